"""Saves are all or nothing: a process killed in the middle of a large save leaves no partial
file under the version's name, and the next pipeline runs on the previous complete version."""

from __future__ import annotations

import copy
import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

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
dataset.save(np.zeros((3000, 1, 512, 512), dtype=np.int64))  # 6.3 GB, written in chunks
"""
BUILD_A_LARGE_CACHE_ENTRY = """
import json, sys
import numpy as np
from ugvae_pipeline.data.cache import ImageCache
from ugvae_pipeline.data.sources import load_source
params = json.loads(sys.argv[2])  # the data: parameters the entry was built from
def build(params):  # the real entry's key, but an image set too large to finish in time
    _, metadata = load_source(params)
    return np.zeros((40000, 1, 512, 512), dtype=np.uint8), metadata  # 10.5 GB
ImageCache(sys.argv[1]).load_or_build(params, build)
"""


def _kill_when_written(process: subprocess.Popen, pattern: Path) -> None:
    """SIGKILL ``process`` once a file matching ``pattern`` holds 50 MB, as a scheduler would."""
    deadline = time.monotonic() + 120
    while not any(p.stat().st_size > 50_000_000 for p in pattern.parent.glob(pattern.name)):
        assert process.poll() is None, "the save ended before it could be killed"
        assert time.monotonic() < deadline, "the save did not start within 120 s"
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


@pytest.mark.slow
def test_saves_killed_midway_leave_complete_files_and_the_next_run_works(project_copy):
    kedro_cli(project_copy, "--pipelines=ingestion,grouping", "--params", cli_params(DEFAULT_TINY))
    data = project_copy / "data"
    cache = data / "02_intermediate" / "image_cache"
    (entry,) = [p for p in cache.iterdir() if not p.name.startswith(".")]
    params = json.loads((entry / "manifest.json").read_text())["parameters"]
    shutil.rmtree(entry)  # the next ingestion must build it again: kill that build midway
    builder = subprocess.Popen(
        [sys.executable, "-c", BUILD_A_LARGE_CACHE_ENTRY, str(cache), json.dumps(params)],
        cwd=project_copy,
    )
    partial = f".{entry.name}.partial-{socket.gethostname()}-{builder.pid}"
    _kill_when_written(builder, cache / partial / "images.npy")
    assert not entry.exists()  # no entry under its key, only the temporary folder

    groups = data / "03_primary" / "train_groups.npy"
    (good,) = groups.glob("*/train_groups.npy")
    saver = subprocess.Popen(
        [sys.executable, "-c", SAVE_A_LARGE_ARRAY, str(groups), KILLED_VERSION]
    )
    killed = groups / KILLED_VERSION
    _kill_when_written(saver, killed / ".train_groups.npy.partial-*")
    assert not (killed / "train_groups.npy").exists()  # never a partial file under the name
    latest = NumpyArrayDataset(filepath=str(groups), version=Version(None, None)).load()
    np.testing.assert_array_equal(latest, np.load(good))

    # the next pipelines build the cache entry afresh (clearing the dead build's folder) and
    # train on the last complete group plan
    kedro_cli(project_copy, "--pipelines=ingestion,training", "--params", cli_params(DEFAULT_TINY))
    assert (entry / "images.npy").is_file() and not list(cache.glob(".*partial*"))
    assert np.load(entry / "images.npy", mmap_mode="r").shape == (5000, 1, 28, 28)
    assert list((data / "06_models" / "model.pt").glob("*/model.pt"))


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


def test_a_save_that_fails_midway_leaves_no_file_and_the_previous_version(tmp_path):
    from ugvae_pipeline.datasets import JSONDataset

    path = str(tmp_path / "summary.json")
    JSONDataset(filepath=path, version=Version(None, "2020-01-01T00.00.00.000Z")).save({"a": 1})
    broken = JSONDataset(filepath=path, version=Version(None, KILLED_VERSION))
    with pytest.raises(DatasetError):  # json.dump has written '{"a": 1, "b": ' when it fails
        broken.save({"a": 1, "b": object()})
    assert list((tmp_path / "summary.json" / KILLED_VERSION).iterdir()) == []
    assert JSONDataset(filepath=path, version=Version(None, None)).load() == {"a": 1}


def test_every_file_dataset_of_the_catalog_saves_all_or_nothing():
    from kedro.config import OmegaConfigLoader
    from kedro.io import DataCatalog

    from tests.conftest import PROJECT_ROOT
    from ugvae_pipeline.datasets import AtomicFileSystem

    config = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="base")
    catalog = DataCatalog.from_config(config["catalog"])
    files = {
        name: catalog.get(name) for name in catalog.keys() if hasattr(catalog.get(name), "_fs")
    }
    assert len(files) >= 20  # tables, arrays, the images record, figures, models, reports
    plain = [
        name for name, dataset in files.items() if not isinstance(dataset._fs, AtomicFileSystem)
    ]
    assert plain == []
    for dataset in files.values():  # Kedro copies datasets (pinned versions, previews), and the
        copy.deepcopy(dataset)  # ParallelRunner pickles them: the wrapped filesystem survives
        assert isinstance(pickle.loads(pickle.dumps(dataset))._fs, AtomicFileSystem)
