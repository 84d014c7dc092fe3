"""The lineage record of artifacts made from the images, and the check that combined artifacts
share one (``ugvae_pipeline.lineage``), on a real image cache entry and real model files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ugvae_pipeline.data.cache import ImageCache
from ugvae_pipeline.lineage import (
    Lineage,
    LineageMismatch,
    check_data_source,
    common_lineage,
    data_parameters_of,
    of_images,
)
from ugvae_pipeline.models import build_model, load_model, save_model


def _entry(root, source_params: dict, n: int):
    def build(params):
        images = np.zeros((n, 1, 8, 8), dtype=np.uint8)
        return images, pd.DataFrame({"label": np.arange(n) % 10, "split": "train"})

    images, _, entry = ImageCache(root).load_or_build(source_params, build=build)
    return images, entry


def test_images_of_the_cache_name_their_entry_and_data_source(tmp_path):
    mixed = {"source": "mixed", "mixed": {"sources": ["uci_digits", "mnist_embedded"]}}
    images, entry = _entry(tmp_path, mixed, 12)
    lineage = of_images(images)
    assert lineage == Lineage(entry.key, "uci_digits+mnist_embedded", 12)
    assert data_parameters_of(images)["mixed"] == {"sources": ["uci_digits", "mnist_embedded"]}
    assert Lineage.from_dict(lineage.to_dict()) == lineage
    assert of_images(np.asarray(images)) is None  # a copy in memory names no entry
    assert Lineage.from_dict({"key": "x"}) is None and Lineage.from_dict(None) is None


def test_artifacts_of_one_entry_pass_and_of_two_stop_naming_each_and_the_fix(tmp_path):
    old = Lineage("a" * 20, "mnist_embedded", 5000)
    new = Lineage("b" * 20, "uci_digits+mnist_embedded", 6797)
    assert common_lineage("step", {"images": old, "trained_model": old, "x": None}) == old
    assert common_lineage("step", {"x": None}) is None
    with pytest.raises(LineageMismatch) as err:
        common_lineage(
            "extract_codes",
            {"images": new, "evaluation_groups": new, "trained_model": old},
            reference=new,
            rebuild="kedro run --pipelines=grouping,training,extract,evaluate",
        )
    message = str(err.value)
    assert "extract_codes would combine artifacts made from different images" in message
    assert f"trained_model: image cache {old.image_cache} (mnist_embedded, 5000 images)" in message
    assert f"images, evaluation_groups: image cache {new.image_cache}" in message
    assert (
        "Rebuild trained_model from the current images: "
        "kedro run --pipelines=grouping,training,extract,evaluate" in message
    )
    assert f"image cache {old.image_cache} (mnist_embedded)" in message  # or re-ingest it


def test_a_step_reading_data_parameters_of_another_source_stops():
    lineage = Lineage("a" * 20, "uci_digits+mnist_embedded", 6797)
    check_data_source(
        "step", {"source": "mixed", "mixed": {"sources": ["uci_digits", "mnist_embedded"]}}, lineage
    )
    check_data_source("step", {"source": "celeba"}, Lineage("a" * 20))  # unknown: not checked
    with pytest.raises(LineageMismatch, match=r"reads data.source=mnist_embedded .* ingested from"):
        check_data_source("build_evaluation_groups", {"source": "mnist_embedded"}, lineage)


def test_a_model_file_keeps_its_provenance_and_older_files_load_without(tmp_path):
    model = build_model({"name": "gmvae", "architecture": "mlp28"})
    save_model(model, tmp_path / "plain.pt")
    assert load_model(tmp_path / "plain.pt").provenance == {}
    model.provenance = {"training_run_id": "abc", "seed": 7, "lineage": {"image_cache": "k"}}
    save_model(model, tmp_path / "m.pt")
    assert load_model(tmp_path / "m.pt").provenance == model.provenance
