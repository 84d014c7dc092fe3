"""Any folder of images (3D faces, cars, chairs, one's own photos), searched recursively.

Each image is converted to the configured mode (``channels``: 1 → grayscale, 3 → RGB;
transparency composited on white, 16-bit rescaled), centre-cropped to a square and resized
to ``image_size``. Labels are -1; the immediate subfolder under the root is kept as the
``folder`` column (empty for files directly in the root) and the path as ``filename``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ugvae_pipeline.data.imaging import build_image_cache, image_mode
from ugvae_pipeline.data.splits import check_fractions, image_table, random_split

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def list_images(root: Path) -> list[Path]:
    """Image files under ``root`` (recursive, by extension, case-insensitive), sorted by path.

    Raises:
        FileNotFoundError: ``root`` is missing or holds no image file.
    """
    if not root.is_dir():
        raise FileNotFoundError(
            f"image folder {root.resolve()} does not exist; set data.image_folder.root to a folder of "
            f"images (searched recursively; one subfolder per category gives the 'folder' column)"
        )
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())
    if not paths:
        raise FileNotFoundError(
            f"no image files under {root.resolve()}; looked for extensions {EXTENSIONS}"
        )
    return paths


def top_folder(path: Path, root: Path) -> str:
    """The immediate subfolder of ``root`` that holds ``path`` ('' for files in ``root`` itself)."""
    parts = path.relative_to(root).parts
    return parts[0] if len(parts) > 1 else ""


def load_image_folder(
    root: str | Path,
    channels: int = 3,
    image_size: int = 64,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    skip_bad_images: bool = False,
    limit: int | None = None,
    source: str = "image_folder",
    workers: int | None = 1,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Images of ``root`` as uint8 ``[N, channels, image_size, image_size]`` and their metadata.

    ``validation_fraction`` and ``test_fraction`` of the images, chosen by ``split_seed``, are
    ``validation`` and ``test``; the rest ``train``.
    ``limit`` keeps the first N files in path order; ``workers`` processes decode (None: one
    per core).
    """
    root = Path(root)
    image_mode(channels)  # a bad channel count or split fails before the folder is walked
    check_fractions(validation_fraction, test_fraction, "data.image_folder")
    paths = list_images(root)[:limit]
    images, kept = build_image_cache(
        paths, channels, image_size, None, skip_bad_images, desc=source, workers=workers
    )
    paths = [path for path, ok in zip(paths, kept) if ok]
    table = image_table(
        np.full(len(paths), -1),
        random_split(len(paths), validation_fraction, test_fraction, split_seed),
        source,
        filename=pd.Series([p.relative_to(root).as_posix() for p in paths], dtype="string"),
        folder=pd.Series([top_folder(p, root) for p in paths], dtype="string"),
    )
    table.attrs["skipped_images"] = int((~kept).sum())
    return images, table
