"""`kedro run --env celeba` end to end (ingestion → grouping → training → extract → evaluate) on a
small fixture in CelebA's official layout: the hair-colour evaluation groups are scored."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from kedro.io.core import Version
from PIL import Image

from tests.conftest import cli_params, kedro_cli
from tests.data.conftest import CELEBA_SIZE, CROP, write_celeba
from ugvae_pipeline.data.celeba import ATTRIBUTES
from ugvae_pipeline.datasets import CachedImagesDataset

HAIR = {"Black_Hair": (0, 0, 0), "Blond_Hair": (250, 220, 120)}

# Small groups of the fixture's few test images (1/6 of 300 for CelebA's partition 2).
TINY_CELEBA = {
    "train": {"epochs": 1, "group_size": 16, "progress": "log"},
    "groups": {
        "heldout": {"n_groups": 1, "group_size": 16},
        "attribute": {"n_groups": 5, "group_size": 4},
        "evaluation": {"random": {"n_groups": 5}},
    },
    "figures": {"n_groups": 1, "n_images": 8},
    "extract": {"progress": "log"},
}


def _latest(folder):
    return sorted(folder.glob("*/*"))[-1]


def write_hair_coloured_celeba(root, n_images: int) -> None:
    """``write_celeba``, then a band of hair colour across the top of each cropped face of
    exactly one of Black_Hair / Blond_Hair, so the mean image can tell the group types apart."""
    values = write_celeba(root, n_images=n_images)
    top, left = (CELEBA_SIZE[1] - CROP) // 2, (CELEBA_SIZE[0] - CROP) // 2
    for i, row in enumerate(values):
        hair = [name for name in HAIR if row[ATTRIBUTES.index(name)] == 1]
        if len(hair) != 1:
            continue
        path = root / "img_align_celeba" / f"{i + 1:06d}.jpg"
        pixels = np.array(Image.open(path))
        pixels[top : top + 40, left : left + CROP] = HAIR[hair[0]]
        Image.fromarray(pixels).save(path, quality=90)


@pytest.mark.slow
def test_celeba_env_scores_hair_colour_groups_end_to_end(project_copy):
    root = project_copy / "celeba"
    write_hair_coloured_celeba(root, n_images=300)
    params = cli_params({**TINY_CELEBA, "data": {"celeba": {"root": str(root)}}})
    kedro_cli(project_copy, "--env", "celeba", "--params", params)
    data = project_copy / "data"

    images = CachedImagesDataset(
        filepath=str(data / "02_intermediate" / "images.json"), version=Version(None, None)
    ).load()
    assert images.shape == (300, 3, 64, 64)
    codes = pd.read_parquet(_latest(data / "07_model_output" / "global_codes.parquet"))
    assert codes["group_type"].value_counts().to_dict() == {
        "Black_Hair=1": 5,
        "Blond_Hair=1": 5,
        "random": 5,
    }
    assert {f"global_mean_{i:02d}" for i in range(50)} <= set(
        codes.columns
    )  # conf/celeba: dim_beta 50

    scores = pd.read_csv(_latest(data / "08_reporting" / "evaluation_scores.csv")).set_index(
        "representation"
    )
    assert {"global_code", "mean_local_code", "mean_image"} <= set(scores.index)
    assert "oracle_label_histogram" not in scores.index  # CelebA has no class labels
    assert np.isfinite(scores["svm_linear"]).all() and scores["svm_linear"].between(0, 1).all()
    assert np.isfinite(scores["svm_linear_with_random"]).all()
    # the 12,288-dim mean image (reduced by PCA) separates the hair colours painted on the faces
    assert scores.loc["mean_image", "svm_linear"] == 1.0
    assert scores.loc["mean_image", "kmeans_ari"] == 1.0

    summary = json.loads(_latest(data / "08_reporting" / "evaluation_summary.json").read_text())
    assert summary["group_types"] == ["Black_Hair=1", "Blond_Hair=1", "random"]
    assert summary["n_groups"] == 15 and summary["group_size"] == 4
    report = _latest(data / "08_reporting" / "evaluation_report.html").read_text()
    assert "Black_Hair=1, Blond_Hair=1, random" in report
