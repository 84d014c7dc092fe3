"""Decoding image files into a uint8 cache ``[N, C, H, W]``, in bounded memory.

Every file goes through the same steps: open → composite transparency on white → convert to
the configured mode (``L`` or ``RGB``; 16-bit grayscale is rescaled, not clipped) → centre
crop to a square → resize. Images over PIL's ``Image.MAX_IMAGE_PIXELS`` (89.5 MP) decode with
PIL's ``DecompressionBombWarning``; over twice that they are refused like unreadable files, as
possible decompression bombs. The cache is preallocated as uint8 and filled one image at a time,
so peak memory is the cache plus one decoded image, never a float copy of the dataset.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ugvae_pipeline.progress import Progress

log = logging.getLogger(__name__)

MODES = {1: "L", 3: "RGB"}
# Modes that hold one channel of more than 8 bits (16-bit PNG/TIFF): rescaled to 0..255.
WIDE_GRAY_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")
TRANSPARENT_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
PROGRESS_MIN_IMAGES = 2000  # smaller jobs finish before a progress line would help


def image_mode(channels: int) -> str:
    """PIL mode of ``channels``: 1 → ``L``, 3 → ``RGB``."""
    if channels not in MODES:
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    return MODES[channels]


def to_mode(image: Image.Image, mode: str) -> Image.Image:
    """``image`` in ``mode`` (``L`` or ``RGB``).

    Transparent pixels (RGBA, LA, palette with transparency) are composited on white, the
    usual background of object and face crops; 16-bit grayscale is scaled by 255/65535.
    """
    if image.mode in WIDE_GRAY_MODES:
        wide = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(
            np.clip(np.rint(wide * (255 / 65535)), 0, 255).astype(np.uint8), "L"
        )
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.rint(np.asarray(image)), 0, 255).astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in TRANSPARENT_MODES:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return image if image.mode == mode else image.convert(mode)


def centre_crop_box(width: int, height: int, crop_size: int | None) -> tuple[int, int, int, int]:
    """PIL box ``(left, top, right, bottom)`` of the centred ``crop_size`` square (None: largest)."""
    side = min(width, height) if crop_size is None else crop_size
    if side > min(width, height):
        raise ValueError(f"crop_size {side} is larger than the {width}x{height} image")
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def decode_image(
    path: Path, mode: str, image_size: int, crop_size: int | None = None
) -> np.ndarray:
    """One file as uint8 ``[C, image_size, image_size]``: centre square crop, bilinear resize.

    Raises:
        ValueError: the file is not a readable image, naming it.
    """
    try:
        with Image.open(path) as image:
            if crop_size is None and image.format == "JPEG":
                image.draft(
                    image.mode, (image_size, image_size)
                )  # decode big JPEGs at reduced scale
            image.load()
            image = to_mode(image, mode)
            box = centre_crop_box(*image.size, crop_size)
            image = image.crop(box).resize(
                (image_size, image_size), Image.BILINEAR
            )  # crop first: no bleed
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
    ) as err:  # PIL raises all three on bad files
        raise ValueError(f"cannot read image {path}: {err}") from err
    except Image.DecompressionBombError as err:  # over 2 x PIL's MAX_IMAGE_PIXELS (about 179 MP)
        raise ValueError(
            f"cannot read image {path}: refused as a possible decompression bomb: {err}"
        ) from err
    except ValueError as err:
        raise ValueError(f"cannot use image {path}: {err}") from err
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def build_image_cache(
    paths: Sequence[Path],
    channels: int,
    image_size: int,
    crop_size: int | None = None,
    skip_bad_images: bool = False,
    desc: str = "decode",
    skip_parameter: str = "skip_bad_images: true",
) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``paths`` into a preallocated uint8 cache ``[N_ok, C, S, S]``.

    Every image the pipelines read goes through here (ingestion of each source and the
    ``encode`` pipeline), so a model always sees its images decoded the same way.
    ``skip_parameter`` is the setting a bad file's error tells the user to set.

    Returns:
        The cache (rows in the order of ``paths``, bad files left out) and a bool mask ``[N]``
        of the paths kept.

    Raises:
        ValueError: a bad file, naming it, unless ``skip_bad_images`` (then it is logged).
    """
    mode = image_mode(channels)
    cache = np.empty((len(paths), channels, image_size, image_size), dtype=np.uint8)
    kept = np.zeros(len(paths), dtype=bool)
    shown = "auto" if len(paths) >= PROGRESS_MIN_IMAGES else "off"
    progress = Progress(len(paths), desc, "images", shown, logger=log)
    filled, bad = 0, []
    for position, path in enumerate(paths):
        try:
            cache[filled] = decode_image(path, mode, image_size, crop_size)
        except ValueError as err:
            if not skip_bad_images:
                raise ValueError(f"{err}. Remove or fix the file, or set {skip_parameter}") from err
            bad.append(str(path))
        else:
            kept[position], filled = True, filled + 1
        progress.update()
    progress.close()
    if bad:
        log.warning(
            "skipped %d unreadable image(s) (skip_bad_images: true): %s", len(bad), bad[:10]
        )
    return cache[:filled], kept
