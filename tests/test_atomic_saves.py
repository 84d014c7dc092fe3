"""Saves are all or nothing: a process killed in the middle of a large save leaves no partial
file under the version's name, and the next pipeline runs on the previous complete version."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from kedro.io.core import DatasetError, Version

from tests.conftest import DEFAULT_TINY, cli_params, kedro_cli
from ugvae_pipeline.datasets import NumpyArrayDataset

KILLED_VERSION = "2099-01-01T00.00.00.000Z"  # later than any real one: it would be "latest"
SAVE_A_LARGE_ARRAY = """
import sys
import numpy as np
from kedro.io.core import Version
from ugvae_pipeline.datasets import NumpyArrayDataset
dataset = NumpyArrayDataset(filepath=sys.argv[1], version=Version(None, sys.argv[2]))
dataset.save(np.ones((3000, 1, 512, 512), dtype=np.uint8))  # 786 MB, written in chunks
"""


@pytest.mark.slow
def test_a_save_killed_midway_leaves_the_previous_version_and_the_next_run_works(project_copy):
    kedro_cli(project_copy, "--pipelines=ingestion")  # a complete images.npy version
    cache = project_copy / "data" / "02_intermediate" / "images.npy"
    (good,) = cache.glob("*/images.npy")
    saver = subprocess.Popen([sys.executable, "-c", SAVE_A_LARGE_ARRAY, str(cache), KILLED_VERSION])
    killed = cache / KILLED_VERSION
    deadline = time.monotonic() + 120
    while not any(p.stat().st_size > 50_000_000 for p in killed.glob(".*partial*")):
        assert saver.poll() is None, "the save ended before it could be killed"
        assert time.monotonic() < deadline, "the save did not start within 120 s"
        time.sleep(0.01)
    os.kill(saver.pid, signal.SIGKILL)  # mid-save, as a scheduler's kill would
    saver.wait()
    assert not (killed / "images.npy").exists()  # only the partial file, never the version's name
    latest = NumpyArrayDataset(filepath=str(cache), version=Version(None, None)).load()
    assert latest.shape == np.load(good).shape
    # the next pipeline reads the last complete version and trains
    kedro_cli(project_copy, "--pipelines=grouping,training", "--params", cli_params(DEFAULT_TINY))
    assert list((project_copy / "data" / "06_models" / "model.pt").glob("*/model.pt"))


def test_a_truncated_file_from_elsewhere_is_named_with_the_fix(tmp_path):
    path = tmp_path / "images.npy"
    version = tmp_path / "images.npy" / "2020-01-01T00.00.00.000Z"
    version.mkdir(parents=True)
    np.save(version / "images.npy", np.zeros((100, 1, 28, 28), dtype=np.uint8))
    data = (version / "images.npy").read_bytes()
    (version / "images.npy").write_bytes(data[: len(data) // 2])  # cut short
    dataset = NumpyArrayDataset(filepath=str(path), version=Version(None, None), mmap=True)
    with pytest.raises(
        DatasetError,
        match=r"images.npy is truncated or not a .npy file .*Delete its version folder",
    ):
        dataset.load()
