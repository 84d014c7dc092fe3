"""Tiny on-disk fixtures in the official layouts, generated on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ugvae_pipeline.data.celeba import ATTRIBUTES

CELEBA_SIZE = (178, 218)  # width, height of the aligned faces
CROP = 148


def celeba_face(rng: np.random.Generator) -> Image.Image:
    """A 178x218 image: the centred 148x148 square red, the border blue (to check the crop)."""
    pixels = np.zeros((CELEBA_SIZE[1], CELEBA_SIZE[0], 3), dtype=np.uint8)
    pixels[..., 2] = 255
    top, left = (CELEBA_SIZE[1] - CROP) // 2, (CELEBA_SIZE[0] - CROP) // 2
    pixels[top : top + CROP, left : left + CROP] = (255, 0, 0)
    pixels[top + 20 : top + 30, left + 20 : left + 30] = rng.integers(
        0, 256, 3
    )  # make images differ
    return Image.fromarray(pixels)


def write_celeba(root: Path, n_images: int = 36, seed: int = 0) -> np.ndarray:
    """Write CelebA's official layout under ``root``; return the ±1 attributes ``[N, 40]``."""
    rng = np.random.default_rng(seed)
    (root / "img_align_celeba").mkdir(parents=True)
    names = [f"{i + 1:06d}.jpg" for i in range(n_images)]
    for name in names:
        celeba_face(rng).save(root / "img_align_celeba" / name, quality=90)
    values = rng.choice([-1, 1], size=(n_images, len(ATTRIBUTES)))
    rows = [
        f"{name} " + " ".join(f"{v:2d}" for v in row) for name, row in zip(names, values)
    ]  # official: padded ±1
    (root / "list_attr_celeba.txt").write_text(
        f"{n_images}\n" + " ".join(ATTRIBUTES) + "\n" + "\n".join(rows) + "\n"
    )
    partition = np.where(
        np.arange(n_images) < n_images * 2 // 3, 0, np.where(np.arange(n_images) % 2, 1, 2)
    )
    (root / "list_eval_partition.txt").write_text(
        "".join(f"{name} {p}\n" for name, p in zip(names, partition))
    )
    return values


@pytest.fixture
def celeba_root(tmp_path: Path) -> Path:
    write_celeba(tmp_path / "celeba")
    return tmp_path / "celeba"


@pytest.fixture
def image_folder_root(tmp_path: Path) -> Path:
    """Mixed formats and modes in two subfolders and the root, with a non-ASCII file name."""
    root = tmp_path / "images"
    (root / "cats").mkdir(parents=True)
    (root / "dogs" / "nested").mkdir(parents=True)
    gray = np.tile(np.linspace(0, 255, 40, dtype=np.uint8), (30, 1))  # 40 wide, 30 high
    Image.fromarray(gray, "L").save(root / "cats" / "gray.png")
    Image.fromarray(np.full((50, 50, 3), (0, 128, 255), dtype=np.uint8)).save(
        root / "cats" / "rgb.JPG", quality=95
    )
    rgba = np.zeros((20, 20, 4), dtype=np.uint8)
    rgba[:10] = (255, 0, 0, 255)  # top half opaque red, bottom half fully transparent
    Image.fromarray(rgba, "RGBA").save(root / "cats" / "transparent.png")
    Image.fromarray(np.full((16, 16, 3), (0, 255, 0), dtype=np.uint8)).convert("P").save(
        root / "dogs" / "palette.gif"
    )
    Image.fromarray(np.full((24, 24), 128 * 257, dtype=np.uint16)).save(
        root / "dogs" / "nested" / "wide16.png"
    )
    Image.fromarray(np.full((12, 12, 3), 7, dtype=np.uint8)).save(root / "dogs" / "chien_été.bmp")
    Image.fromarray(np.full((12, 12, 3), 200, dtype=np.uint8)).save(root / "top.webp")
    (root / "notes.txt").write_text("not an image")
    return root
