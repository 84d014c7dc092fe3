"""One's own groups of images, for the ``encode`` pipeline: a folder of groups or a CSV.

Two layouts under ``root``:

- one immediate sub-folder per group, ``root/<group>/...``, each searched recursively for
  image files as ``data.image_folder`` is (sub-folders whose name starts with ``.`` are left
  out; files directly in ``root`` belong to no group and are left out with a warning);
- ``groups_csv``: a CSV with columns ``file`` and ``group``, one row per image, ``file``
  relative to ``root``; groups in the order they first appear, images in row order.

The images are decoded by :func:`~ugvae_pipeline.data.imaging.build_image_cache`, the function
ingestion decodes every source with, so an image reaches the model exactly as one of its
training images did.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ugvae_pipeline.data.image_folder import EXTENSIONS
from ugvae_pipeline.data.imaging import build_image_cache

log = logging.getLogger(__name__)

LAYOUT = (
    "one sub-folder per group under encode.root (<root>/<group>/<image files>, searched "
    "recursively), or encode.groups_csv: a CSV with columns file,group, one row per image, "
    "file relative to encode.root"
)


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in EXTENSIONS and path.is_file()


def check_encode_root(root: str | Path | None) -> Path:
    """``encode.root`` as a folder, or an error naming the parameter and the expected layout
    (the parameter hook calls it before a run of the encode pipeline opens its MLflow run)."""
    if root is None or str(root) == "":
        raise ValueError(
            "encode.root is not set: pass --params encode.root=/path/to/groups; "
            f"expected layout: {LAYOUT}"
        )
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"encode.root {root.resolve()} does not exist or is not a folder; "
            f"expected layout: {LAYOUT}"
        )
    return root


def _folder_groups(root: Path) -> pd.DataFrame:
    folders = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    loose = sorted(p.name for p in root.iterdir() if _is_image(p))
    if not folders:
        found = f"only {len(loose)} image file(s) directly in it, " if loose else ""
        raise FileNotFoundError(
            f"no group sub-folder in encode.root {root.resolve()} ({found}which belong to no "
            f"group); expected layout: {LAYOUT}"
        )
    if loose:
        log.warning(
            "%d image file(s) directly in %s belong to no group and are left out: %s",
            len(loose),
            root,
            loose[:10],
        )
    rows, empty = [], []
    for folder in folders:
        files = sorted(p for p in folder.rglob("*") if _is_image(p))
        if not files:
            empty.append(folder.name)
        rows += [(folder.name, p.relative_to(root).as_posix()) for p in files]
    if empty:
        raise FileNotFoundError(
            f"group folder(s) {empty} under {root.resolve()} hold no image file "
            f"(extensions {EXTENSIONS}); every group needs at least one image. Remove the "
            "folder(s) or add images"
        )
    return pd.DataFrame(rows, columns=["group", "file"])


def _csv_groups(root: Path, groups_csv: str | Path) -> pd.DataFrame:
    path = Path(groups_csv)
    path = path if path.is_absolute() else root / path
    if not path.is_file():
        raise FileNotFoundError(
            f"encode.groups_csv {path.resolve()} does not exist (a relative path is read from "
            "encode.root)"
        )
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"encode.groups_csv {path}: not a readable CSV: {err}") from err
    missing = [c for c in ("file", "group") if c not in table.columns]
    if missing:
        raise ValueError(
            f"encode.groups_csv {path} lacks column(s) {missing}; it has {list(table.columns)}; "
            "expected a header line 'file,group' and one row per image"
        )
    table = table[["group", "file"]].apply(lambda column: column.str.strip())
    if table.empty:
        raise ValueError(f"encode.groups_csv {path} lists no image")
    blank = np.flatnonzero((table == "").any(axis=1).to_numpy())
    if len(blank):
        lines = (blank + 2).tolist()[:10]  # 1-based, after the header
        raise ValueError(f"encode.groups_csv {path}: empty file or group on line(s) {lines}")
    absent = [f for f in table["file"].unique() if not (root / f).is_file()]
    if absent:
        raise FileNotFoundError(
            f"encode.groups_csv {path} lists {len(absent)} file(s) not found under "
            f"{root.resolve()}: {absent[:10]}"
        )
    order = {group: i for i, group in enumerate(table["group"].unique())}
    rank = table["group"].map(order)
    return table.iloc[np.argsort(rank.to_numpy(), kind="stable")].reset_index(drop=True)


def group_files(root: str | Path | None, groups_csv: str | Path | None = None) -> pd.DataFrame:
    """The images of every group: columns ``group`` and ``file`` (relative to ``root``), one
    row per image, each group's rows together (folder groups sorted by name).

    Raises:
        ValueError: ``root`` is not set, or ``groups_csv`` is malformed.
        FileNotFoundError: ``root``, ``groups_csv`` or a listed file is missing, there is no
            group, or a group folder holds no image; the message gives the expected layout.
    """
    root = check_encode_root(root)
    table = _folder_groups(root) if groups_csv is None else _csv_groups(root, groups_csv)
    return table.astype({"group": "string", "file": "string"})


def load_groups(
    root: str | Path | None,
    channels: int,
    image_size: int,
    groups_csv: str | Path | None = None,
    crop_size: int | None = None,
    skip_bad_images: bool = False,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Every group's images as uint8 ``[N, channels, image_size, image_size]``, the groups one
    after another, and their table: ``group``, ``file``, ``position`` (within the group).

    Decoded as ingestion decodes (``crop_size`` None: the largest centred square, as
    ``data.image_folder``). Unreadable files are an error naming them, or with
    ``skip_bad_images`` are left out (counted in ``table.attrs["skipped_images"]``); a group
    left with no image is an error.
    """
    table = group_files(root, groups_csv)
    root = Path(root)
    images, kept = build_image_cache(
        [root / file for file in table["file"]],
        channels,
        image_size,
        crop_size,
        skip_bad_images,
        desc="encode",
        skip_parameter="encode.skip_bad_images=true",
    )
    lost = sorted(set(table["group"]) - set(table.loc[kept, "group"]))
    if lost:
        raise ValueError(
            f"group(s) {lost[:10]} have no readable image (every file was skipped as "
            "unreadable); fix the files or leave the group(s) out"
        )
    skipped = int((~kept).sum())
    table = table[kept].reset_index(drop=True)
    table["position"] = table.groupby("group", sort=False).cumcount()
    table.attrs["skipped_images"] = skipped
    return images, table
