"""A synthetic folder in CelebA's exact layout, for a smoke run of the hair-colour experiment.

    python experiments/celeba_fixture.py data/01_raw/celeba_smoke [--images 1500]

Each 178×218 "face" is a skin-coloured ellipse on a noisy background under a band of hair
whose colour follows the image's attributes (black, blond or brown), so hair-colour groups
differ in what they share, as real CelebA groups do. It is not CelebA: scores on it test the
pipeline end to end, not the model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from ugvae_pipeline.data.celeba import ATTRIBUTE_FILE, ATTRIBUTES, IMAGE_DIR, PARTITION_FILE

WIDTH, HEIGHT = 178, 218
HAIR = {"Black_Hair": (25, 20, 20), "Blond_Hair": (235, 205, 120), "other": (120, 75, 40)}


def face(hair: tuple[int, int, int], rng: np.random.Generator) -> Image.Image:
    pixels = rng.integers(60, 200, (HEIGHT, WIDTH, 3)).astype(np.float64)
    rows, cols = np.mgrid[:HEIGHT, :WIDTH]
    centre_row, centre_col = 120 + rng.integers(-8, 9), 89 + rng.integers(-8, 9)
    head = ((rows - centre_row) / 62) ** 2 + ((cols - centre_col) / 48) ** 2 <= 1
    hair_band = (((rows - centre_row + 40) / 60) ** 2 + ((cols - centre_col) / 58) ** 2 <= 1) & (
        rows < centre_row - 15
    )
    pixels[head] = np.array([225, 180, 150]) + rng.normal(0, 8, 3)
    pixels[hair_band] = np.array(hair) + rng.normal(0, 10, 3)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def write_fixture(root: Path, n_images: int = 1500, seed: int = 0) -> Path:
    """Write ``n_images`` faces, the attribute file and the partition file (70 / 10 / 20 %)."""
    rng = np.random.default_rng(seed)
    (root / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    names = [f"{i + 1:06d}.jpg" for i in range(n_images)]
    values = rng.choice([-1, 1], size=(n_images, len(ATTRIBUTES)))
    hair = rng.choice(["Black_Hair", "Blond_Hair", "other"], size=n_images)
    for column in ("Black_Hair", "Blond_Hair", "Brown_Hair"):
        values[:, ATTRIBUTES.index(column)] = -1
    values[hair == "Black_Hair", ATTRIBUTES.index("Black_Hair")] = 1
    values[hair == "Blond_Hair", ATTRIBUTES.index("Blond_Hair")] = 1
    values[hair == "other", ATTRIBUTES.index("Brown_Hair")] = 1
    for name, kind in zip(names, hair):
        face(HAIR[kind], rng).save(root / IMAGE_DIR / name, quality=90)
    rows = [f"{name} " + " ".join(f"{v:2d}" for v in row) for name, row in zip(names, values)]
    (root / ATTRIBUTE_FILE).write_text(
        f"{n_images}\n" + " ".join(ATTRIBUTES) + "\n" + "\n".join(rows) + "\n"
    )
    partition = rng.choice([0, 1, 2], size=n_images, p=[0.7, 0.1, 0.2])
    (root / PARTITION_FILE).write_text(
        "".join(f"{name} {p}\n" for name, p in zip(names, partition))
    )
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--images", type=int, default=1500)
    args = parser.parse_args(argv)
    write_fixture(args.root, args.images)
    print(f"wrote {args.images} faces in CelebA's layout under {args.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
