"""CelebA ("Align&Cropped Images") from the user's local copy in the official layout.

    <root>/img_align_celeba/000001.jpg ...   178x218 aligned faces
    <root>/list_attr_celeba.txt              line 1: count; line 2: the 40 attribute names;
                                             then ``filename v1 ... v40`` with values ±1
    <root>/list_eval_partition.txt           ``filename 0|1|2`` (train / validation / test)

Split: CelebA's own partition: 0 is ``train``, 1 ``validation``, 2 ``test``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ugvae_pipeline.data.imaging import build_image_cache
from ugvae_pipeline.data.splits import image_table

log = logging.getLogger(__name__)

IMAGE_DIR, ATTRIBUTE_FILE, PARTITION_FILE = (
    "img_align_celeba",
    "list_attr_celeba.txt",
    "list_eval_partition.txt",
)
ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()
PARTITION_SPLITS = {0: "train", 1: "validation", 2: "test"}
WHERE_TO_GET = (
    "Download the 'Align&Cropped Images' (img_align_celeba.zip) and the two annotation files from "
    "http://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Google Drive links there) and unzip them under the root"
)


def check_layout(root: Path) -> None:
    """Raise ``FileNotFoundError`` naming what is missing under ``root`` and where to get it."""
    expected = [root / IMAGE_DIR, root / ATTRIBUTE_FILE, root / PARTITION_FILE]
    missing = [str(path) for path in expected if not path.exists()]
    if missing:
        raise FileNotFoundError(
            f"CelebA not found: missing {missing}. Set data.celeba.root to a folder holding "
            f"{IMAGE_DIR}/*.jpg, {ATTRIBUTE_FILE} and {PARTITION_FILE}. {WHERE_TO_GET}."
        )


def _read_table(path: Path, names: list[str], skiprows: int) -> pd.DataFrame:
    """Whitespace-separated rows with exactly ``len(names)`` fields, or an error naming the line."""
    try:
        table = pd.read_csv(
            path, sep=r"\s+", header=None, names=names, skiprows=skiprows, dtype={names[0]: str}
        )
    except pd.errors.ParserError as err:
        raise ValueError(
            f"{path}: rows must have {len(names)} fields ({names[0]} and values): {err}"
        ) from err
    incomplete = table.isna().any(axis=1).to_numpy()
    if incomplete.any():
        row = int(np.flatnonzero(incomplete)[0])
        raise ValueError(
            f"{path}: row {row + 1} ({table.iloc[row, 0]}) has fewer than the {len(names) - 1} values "
            f"the header names; the file is truncated or a column is missing"
        )
    return table


def read_attributes(path: Path) -> pd.DataFrame:
    """``list_attr_celeba.txt`` → one row per image: ``filename`` then the 40 attributes as bool.

    Raises:
        ValueError: a missing attribute name, a short row, a value other than ±1, or a row count
            that disagrees with the count on line 1; each names the file.
    """
    with open(path, encoding="utf-8") as handle:
        count_line, header_line = handle.readline(), handle.readline()
    try:
        declared = int(count_line.strip())
    except ValueError as err:
        raise ValueError(
            f"{path}: line 1 must be the number of images, got {count_line.strip()!r}"
        ) from err
    names = header_line.split()
    missing = [name for name in ATTRIBUTES if name not in names]
    if missing:
        raise ValueError(f"{path}: attribute column(s) {missing} missing from the header (line 2)")
    table = _read_table(path, ["filename", *names], skiprows=2)
    if len(table) != declared:
        raise ValueError(
            f"{path}: line 1 declares {declared} images but the file lists {len(table)}"
        )
    values = table[names].to_numpy()
    if not np.isin(values, (-1, 1)).all():
        row = int(np.flatnonzero(~np.isin(values, (-1, 1)).all(axis=1))[0])
        raise ValueError(
            f"{path}: attribute values must be -1 or 1; row {row + 1} ({table.iloc[row, 0]}) is not"
        )
    return pd.concat([table[["filename"]], pd.DataFrame(values == 1, columns=names)], axis=1)


def read_partition(path: Path, filenames: pd.Series) -> np.ndarray:
    """``list_eval_partition.txt`` → partition ``[N]`` (0, 1, 2) in the order of ``filenames``."""
    table = _read_table(path, ["filename", "partition"], skiprows=0)
    repeated = table["filename"][table["filename"].duplicated()]
    if len(repeated):
        raise ValueError(
            f"{path}: {len(repeated)} image(s) listed more than once, e.g. {list(repeated[:5])}"
        )
    partition = table.set_index("filename")["partition"]
    absent = filenames[~filenames.isin(partition.index)]
    if len(absent):
        raise ValueError(
            f"{path}: no partition for {len(absent)} image(s) of {ATTRIBUTE_FILE}, e.g. {list(absent[:5])}"
        )
    values = partition.loc[filenames].to_numpy()
    if not np.isin(values, list(PARTITION_SPLITS)).all():
        raise ValueError(f"{path}: partitions must be 0 (train), 1 (validation) or 2 (test)")
    return values.astype(np.int8)


def check_images_listed(image_dir: Path, filenames: pd.Series, attribute_path: Path) -> None:
    """Every image of the attribute file must exist in ``image_dir`` (extra files are logged)."""
    on_disk = set(os.listdir(image_dir))
    absent = filenames[~filenames.isin(on_disk)]
    if len(absent):
        raise ValueError(
            f"{attribute_path} lists {len(filenames)} images but {len(absent)} are not in {image_dir} "
            f"(e.g. {list(absent[:5])}); the image folder holds {len(on_disk)} files. Unzip the complete "
            f"img_align_celeba.zip there"
        )
    if len(on_disk) > len(filenames):
        log.warning(
            "%s holds %d files not listed in %s; they are ignored",
            image_dir,
            len(on_disk) - len(filenames),
            attribute_path,
        )


def load_celeba(
    root: str | Path,
    image_size: int = 64,
    crop_size: int | None = 148,
    limit: int | None = None,
    skip_bad_images: bool = False,
    workers: int | None = 1,
) -> tuple[np.ndarray, pd.DataFrame]:
    """CelebA as uint8 RGB ``[N, 3, image_size, image_size]`` and its metadata.

    Each 178x218 aligned face is centre-cropped to ``crop_size`` (148: the common practice)
    and resized bilinearly. Metadata: the common columns, ``filename``, ``partition`` (0/1/2)
    and the 40 attributes as bool columns. ``limit`` keeps the first N images of the file;
    ``workers`` processes decode (None: one per core).
    """
    root = Path(root)
    check_layout(root)
    attributes = read_attributes(root / ATTRIBUTE_FILE)
    attributes["partition"] = read_partition(root / PARTITION_FILE, attributes["filename"])
    check_images_listed(root / IMAGE_DIR, attributes["filename"], root / ATTRIBUTE_FILE)
    if limit is not None:
        attributes = attributes.iloc[:limit].reset_index(drop=True)
    paths = [root / IMAGE_DIR / name for name in attributes["filename"]]
    images, kept = build_image_cache(
        paths, 3, image_size, crop_size, skip_bad_images, desc="celeba", workers=workers
    )
    attributes = attributes[kept].reset_index(drop=True)
    split = attributes["partition"].map(PARTITION_SPLITS).to_numpy()
    columns = {
        "filename": attributes["filename"].astype("string"),
        **{c: attributes[c] for c in attributes.columns[1:]},
    }
    table = image_table(np.full(len(attributes), -1), split, "celeba", **columns)
    table.attrs["skipped_images"] = int((~kept).sum())
    return images, table
