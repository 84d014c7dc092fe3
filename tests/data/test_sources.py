"""Source registry, uci_digits and mixed (domain alignment) sources."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ugvae_pipeline.data.digits import centre_of_mass_offset, mnist_framed
from ugvae_pipeline.data.sources import SOURCES, combine_domains, load_source
from ugvae_pipeline.data.splits import image_table


def test_unknown_source_lists_valid_sources():
    with pytest.raises(ValueError) as err:
        load_source({"source": "imagenet"})
    assert "imagenet" in str(err.value)
    assert all(
        name in str(err.value)
        for name in ("celeba", "image_folder", "mixed", "uci_digits", "mnist_embedded")
    )
    assert set(SOURCES) >= {
        "celeba",
        "image_folder",
        "mixed",
        "uci_digits",
        "mnist_embedded",
        "mnist",
    }


def test_uci_digits_in_mnist_framing():
    images, metadata = load_source(
        {"source": "uci_digits", "validation_fraction": 0.1, "test_fraction": 0.25, "split_seed": 3}
    )
    assert images.shape == (1797, 1, 28, 28) and images.dtype == np.uint8
    assert (images.max(axis=(1, 2, 3)) == 255).all()
    rows_used, cols_used = (images[:, 0] > 0).any(axis=2), (images[:, 0] > 0).any(axis=1)
    extent = [28 - used.argmax(1) - used[:, ::-1].argmax(1) for used in (rows_used, cols_used)]
    assert max(extent[0].max(), extent[1].max()) <= 20  # the digit fits the 20x20 box
    rows, cols = np.indices((28, 28))
    mass = images[:, 0].astype(float)
    centre = (
        np.stack([(mass * rows).sum((1, 2)), (mass * cols).sum((1, 2))], 1)
        / mass.sum((1, 2))[:, None]
    )
    assert np.abs(centre - 13.5).max() < 1.0  # centred by centre of mass
    test = metadata[metadata["split"] == "test"].groupby("label").size()
    assert len(test) == 10 and test.between(0.25 * 170, 0.25 * 190).all()  # stratified
    validation = metadata[metadata["split"] == "validation"].groupby("label").size()
    assert len(validation) == 10 and validation.between(0.1 * 170, 0.1 * 190).all()
    assert set(metadata["source"]) == {"uci_digits"}


def test_centre_of_mass_offset_moves_an_off_centre_digit():
    digit = np.zeros((20, 20))
    digit[:, :5] = 1  # all mass on the left: column centre 2
    assert centre_of_mass_offset(digit, 28) == (4, 8)  # column clipped to the canvas
    assert mnist_framed(np.ones((1, 8, 8))).shape == (1, 1, 28, 28)


def test_mixed_digits_have_a_domain_column():
    images, metadata = load_source(
        {"source": "mixed", "mixed": {"sources": ["mnist_embedded", "uci_digits"]}}
    )
    assert images.shape == (6797, 1, 28, 28)
    assert metadata["domain"].value_counts().to_dict() == {
        "mnist_embedded": 5000,
        "uci_digits": 1797,
    }
    assert list(metadata["image_id"]) == list(range(6797))
    assert metadata.loc[5000, "source"] == "uci_digits"


def test_mixed_shapes_must_agree_naming_the_parameters():
    small = (
        np.zeros((2, 1, 28, 28), np.uint8),
        image_table(np.zeros(2), np.array(["train"] * 2), "a"),
    )
    large = (
        np.zeros((2, 3, 64, 64), np.uint8),
        image_table(np.zeros(2), np.array(["train"] * 2), "b"),
    )
    with pytest.raises(
        ValueError, match=r"one shape.*\(1, 28, 28\).*\(3, 64, 64\).*data.image_folder.channels"
    ):
        combine_domains([small, large], ["a", "b"])


def test_mixed_celeba_and_folder_keeps_attributes_nullable(celeba_root, image_folder_root):
    params = {
        "source": "mixed",
        "celeba": {"root": str(celeba_root), "image_size": 8},
        "image_folder": {"root": str(image_folder_root), "image_size": 8},
        "mixed": {"sources": ["celeba", {"source": "image_folder", "domain": "objects"}]},
    }
    images, metadata = load_source(params)
    assert images.shape == (43, 3, 8, 8)
    assert metadata["domain"].value_counts().to_dict() == {"celeba": 36, "objects": 7}
    assert metadata["Male"].isna().sum() == 7 and str(metadata["Male"].dtype) == "boolean"
    assert metadata["folder"].isna().sum() == 36


def test_mixed_needs_two_distinct_domains():
    with pytest.raises(ValueError, match="at least two sources"):
        load_source({"source": "mixed", "mixed": {"sources": ["uci_digits"]}})
    with pytest.raises(ValueError, match="repeated domain names"):
        load_source({"source": "mixed", "mixed": {"sources": ["uci_digits", "uci_digits"]}})


def test_metadata_columns_are_the_contract():
    table = image_table(
        np.array([3, -1]),
        np.array(["train", "test"]),
        "x",
        folder=pd.Series(["a", "b"], dtype="string"),
    )
    assert list(table.columns) == ["image_id", "label", "split", "source", "folder"]
    assert table["label"].dtype == np.int64
