"""Decoding image files into a uint8 cache ``[N, C, H, W]``, in bounded memory.

Every file goes through the same steps: open → composite transparency on white → convert to
the configured mode (``L`` or ``RGB``; 16-bit grayscale is rescaled, not clipped) → centre
crop to a square → resize. Images over PIL's ``Image.MAX_IMAGE_PIXELS`` (89.5 MP) decode with
PIL's ``DecompressionBombWarning``; over twice that they are refused like unreadable files, as
possible decompression bombs. The cache is preallocated as uint8 and filled chunk by chunk, so
peak memory is the cache plus the chunks in flight, never a float copy of the dataset.

With ``workers`` > 1 the files are decoded in that many processes, in chunks of
``CHUNK_IMAGES`` files, each into the rows of its files: on Linux the workers are forked and
write into the cache itself (shared memory), elsewhere they return their chunks. Row i is
always file i, so the cache is the same whatever the number of workers.
"""

from __future__ import annotations

import logging
import mmap
import multiprocessing
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
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
CHUNK_IMAGES = 64  # files per task of a decoding process (~0.8 MB of 3x64x64 images)
PARALLEL_MIN_IMAGES = 1000  # smaller jobs decode in this process: starting workers costs more


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


def decode_workers(workers: int | None, parameter: str = "data.workers") -> int:
    """Decoding processes: ``workers``, or every CPU core this process may use when None.

    Raises:
        ValueError: ``workers`` is not an integer >= 1 or null, naming ``parameter``.
    """
    if workers is None:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(
            f"{parameter} must be an integer >= 1 or null (every core), got {workers!r}"
        )
    return workers


_SHARED_CACHE: np.ndarray | None = None  # in a forked decoding process: the parent's cache


def _share_cache(cache: np.ndarray) -> None:
    global _SHARED_CACHE
    _SHARED_CACHE = cache


def _decode_chunk(
    first: int,
    paths: Sequence[Path],
    mode: str,
    image_size: int,
    crop_size: int | None,
    cache: np.ndarray | None = None,
) -> tuple[np.ndarray | None, list[tuple[int, str]]]:
    """Decode ``paths`` into rows ``first, first + 1, ...`` of ``cache`` (this process's, or the
    parent's shared cache in a forked worker). Without either (a spawned worker) the chunk is
    returned to be copied. Returns that copy or None, and ``(position, error)`` of bad files."""
    cache = _SHARED_CACHE if cache is None else cache
    out = cache[first : first + len(paths)] if cache is not None else None
    if out is None:
        channels = 1 if mode == "L" else 3
        out = np.empty((len(paths), channels, image_size, image_size), dtype=np.uint8)
    bad = []
    for position, path in enumerate(paths):
        try:
            out[position] = decode_image(path, mode, image_size, crop_size)
        except ValueError as err:
            bad.append((position, str(err)))
    return (None if cache is not None else out), bad


def _decode_all(
    cache: np.ndarray,
    paths: Sequence[Path],
    mode: str,
    image_size: int,
    crop_size: int | None,
    workers: int,
) -> Iterator[tuple[int, int, list[tuple[int, str]]]]:
    """Decode ``paths`` into ``cache`` (row i: file i) chunk by chunk over ``workers``
    processes; yields ``(first row, files, bad files)`` of each chunk in order.

    Forked workers (Linux) write into ``cache`` itself, shared memory; spawned ones return
    their chunks, copied in here."""
    firsts = list(range(0, len(paths), CHUNK_IMAGES))
    chunks = [paths[i : i + CHUNK_IMAGES] for i in firsts]
    if workers <= 1 or len(paths) < PARALLEL_MIN_IMAGES:
        for first, chunk in zip(firsts, chunks):
            yield (
                first,
                len(chunk),
                _decode_chunk(first, chunk, mode, image_size, crop_size, cache)[1],
            )
        return
    context = _pool_context()
    n = len(chunks)
    shared = context.get_start_method() == "fork"
    with ProcessPoolExecutor(
        min(workers, n),
        mp_context=context,
        initializer=_share_cache if shared else None,
        initargs=(cache,) if shared else (),
    ) as pool:
        try:
            results = pool.map(
                _decode_chunk, firsts, chunks, [mode] * n, [image_size] * n, [crop_size] * n
            )
            for first, chunk, (decoded, bad) in zip(firsts, chunks, results):
                if decoded is not None:
                    cache[first : first + len(chunk)] = decoded
                yield first, len(chunk), bad
        finally:  # a bad file stops the job: drop the chunks not started
            pool.shutdown(cancel_futures=True)


def _pool_context():
    # fork starts a worker in milliseconds, shares the cache's memory, and the workers only
    # decode (no threads, no torch); elsewhere (macOS, Windows) the safe default, spawn
    return multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")


def _shared_array(shape: tuple[int, ...]) -> np.ndarray:
    """A uint8 array in anonymous shared memory: a forked process's writes are seen here."""
    size = int(np.prod(shape))
    return np.frombuffer(mmap.mmap(-1, max(size, 1)), dtype=np.uint8, count=size).reshape(shape)


def build_image_cache(
    paths: Sequence[Path],
    channels: int,
    image_size: int,
    crop_size: int | None = None,
    skip_bad_images: bool = False,
    desc: str = "decode",
    skip_parameter: str = "skip_bad_images: true",
    workers: int | None = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``paths`` into a preallocated uint8 cache ``[N_ok, C, S, S]``.

    Every image the pipelines read goes through here (ingestion of each source and the
    ``encode`` pipeline), so a model always sees its images decoded the same way.
    ``skip_parameter`` is the setting a bad file's error tells the user to set. ``workers``
    processes decode (None: one per CPU core); jobs under ``PARALLEL_MIN_IMAGES`` files decode
    in this process.

    Returns:
        The cache (rows in the order of ``paths``, bad files left out) and a bool mask ``[N]``
        of the paths kept.

    Raises:
        ValueError: a bad file, naming it, unless ``skip_bad_images`` (then it is logged).
    """
    mode = image_mode(channels)
    workers = decode_workers(workers)
    shape = (len(paths), channels, image_size, image_size)
    parallel = workers > 1 and len(paths) >= PARALLEL_MIN_IMAGES
    cache = _shared_array(shape) if parallel else np.empty(shape, dtype=np.uint8)
    kept = np.ones(len(paths), dtype=bool)
    shown = "auto" if len(paths) >= PROGRESS_MIN_IMAGES else "off"
    progress = Progress(len(paths), desc, "images", shown, logger=log)
    bad = []
    try:
        for first, n_files, errors in _decode_all(
            cache, paths, mode, image_size, crop_size, workers
        ):
            for position, message in errors:
                if not skip_bad_images:
                    raise ValueError(f"{message}. Remove or fix the file, or set {skip_parameter}")
                kept[first + position] = False
                bad.append(str(paths[first + position]))
            progress.update(n_files)
    finally:
        progress.close()
    if bad:
        log.warning(
            "skipped %d unreadable image(s) (skip_bad_images: true): %s", len(bad), bad[:10]
        )
        return cache[kept], kept
    return cache, kept
