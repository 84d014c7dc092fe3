"""The image cache: decoded once, reused while the source files and the data: parameters are
unchanged, rebuilt when any of them changes; parallel decoding gives the same cache."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
from kedro.io.core import DatasetError, Version
from PIL import Image

from ugvae_pipeline.data.cache import ImageCache, cache_key
from ugvae_pipeline.data.imaging import PARALLEL_MIN_IMAGES, build_image_cache
from ugvae_pipeline.datasets import CachedImagesDataset
from ugvae_pipeline.pipelines.ingestion.nodes import ingest_images


def _params(root, **folder) -> dict:
    return {"source": "image_folder", "workers": 1, "image_folder": {"root": str(root), **folder}}


def test_an_unchanged_source_is_reused_and_any_change_builds_a_new_entry(
    image_folder_root, tmp_path
):
    cache = ImageCache(tmp_path / "cache")
    params = _params(image_folder_root, image_size=8)
    built, metadata, first = cache.load_or_build(params)
    assert not first.reused and first.bytes_written > built.nbytes
    again, metadata_again, second = cache.load_or_build({**params, "workers": 2})
    assert second.reused and second.key == first.key and second.bytes_written == 0
    assert isinstance(again, np.memmap) and first.images_path == again.filename
    np.testing.assert_array_equal(again, built)
    assert metadata_again.equals(metadata)

    changed_parameter = cache_key(_params(image_folder_root, image_size=4))
    photo = image_folder_root / "top.webp"
    stat = photo.stat()
    os.utime(photo, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    changed_file = cache_key(params)
    Image.new("RGB", (5, 5)).save(image_folder_root / "new.png")
    added_file = cache_key(params)
    assert len({first.key, changed_parameter, changed_file, added_file}) == 4
    _, _, third = cache.load_or_build(params)
    assert not third.reused and third.key == added_file and len(cache.entries()) == 2


def test_a_broken_entry_is_moved_aside_and_rebuilt(image_folder_root, tmp_path):
    cache = ImageCache(tmp_path / "cache")
    params = _params(image_folder_root, image_size=8)
    images, _, entry = cache.load_or_build(params)
    expected = np.array(images)
    data = entry.images_path.read_bytes()
    entry.images_path.write_bytes(data[: len(data) // 2])  # truncated by hand
    rebuilt, _, again = cache.load_or_build(params)
    assert not again.reused
    np.testing.assert_array_equal(rebuilt, expected)
    assert [p.name.split(".broken-")[0] for p in (tmp_path / "cache").glob("*.broken-*")] == [
        entry.key
    ]


def test_an_entry_altered_in_place_is_not_reused_but_moved_aside_and_rebuilt(
    image_folder_root, tmp_path, caplog
):
    cache = ImageCache(tmp_path / "cache")
    params = _params(image_folder_root, image_size=8)
    images, _, entry = cache.load_or_build(params)
    expected = np.array(images)
    recorded = json.loads((entry.folder / "manifest.json").read_text())["sha256"]
    assert set(recorded) == {"images.npy", "metadata.parquet"}
    del images
    data = bytearray(entry.images_path.read_bytes())
    data[-100:-50] = bytes(255 - b for b in data[-100:-50])  # same size, other pixels
    entry.images_path.write_bytes(bytes(data))

    with caplog.at_level(logging.WARNING, logger="ugvae_pipeline.data.cache"):
        rebuilt, _, metrics = ingest_images(params, cache)  # the ingestion node itself
    assert metrics["ingest_cache_reused"] == [{"value": 0.0, "step": 0}]
    np.testing.assert_array_equal(rebuilt, expected)
    (aside,) = (tmp_path / "cache").glob(f"{entry.key}.broken-*")
    assert aside.joinpath("images.npy").read_bytes() == bytes(data)  # kept for inspection
    assert str(entry.folder) in caplog.text and "images.npy was altered" in caplog.text
    _, _, again = cache.load_or_build(params)
    assert again.reused and again.checksum_seconds > 0  # the rebuilt entry verifies


def test_an_entry_without_checksums_is_not_reused(image_folder_root, tmp_path, caplog):
    cache = ImageCache(tmp_path / "cache")
    params = _params(image_folder_root, image_size=8)
    _, _, entry = cache.load_or_build(params)
    manifest = json.loads((entry.folder / "manifest.json").read_text())
    del manifest["sha256"]  # as an earlier version wrote it
    (entry.folder / "manifest.json").write_text(json.dumps(manifest))
    with caplog.at_level(logging.WARNING, logger="ugvae_pipeline.data.cache"):
        _, _, again = cache.load_or_build(params)
    assert not again.reused and "records no sha256" in caplog.text
    assert len(list((tmp_path / "cache").glob(f"{entry.key}.broken-*"))) == 1


def test_decoding_in_two_processes_gives_the_cache_of_one(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(PARALLEL_MIN_IMAGES + 37):  # enough to start workers, a partial last chunk
        path = tmp_path / f"{i:05d}.png"
        Image.fromarray(rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    (tmp_path / "00500.png").write_bytes(b"not a png")
    serial, kept = build_image_cache(paths, 3, 6, skip_bad_images=True, workers=1)
    parallel, kept_parallel = build_image_cache(paths, 3, 6, skip_bad_images=True, workers=2)
    np.testing.assert_array_equal(parallel, serial)
    np.testing.assert_array_equal(kept_parallel, kept)
    assert np.flatnonzero(~kept).tolist() == [500] and len(serial) == len(paths) - 1
    with pytest.raises(ValueError, match=r"cannot read image .*00500.png.*skip_bad_images"):
        build_image_cache(paths, 3, 6, workers=2)


def test_workers_must_be_a_positive_integer_or_null(tmp_path):
    with pytest.raises(ValueError, match=r"data.workers must be an integer >= 1 or null"):
        build_image_cache([tmp_path / "a.png"], 3, 6, workers=0)


def test_the_images_dataset_records_the_entry_and_names_the_fix_when_it_is_gone(
    image_folder_root, tmp_path
):
    images, _, entry = ImageCache(tmp_path / "cache").load_or_build(
        _params(image_folder_root, image_size=8)
    )
    dataset = CachedImagesDataset(
        filepath=str(tmp_path / "images.json"), version=Version(None, None)
    )
    dataset.save(images)
    (record,) = (tmp_path / "images.json").glob("*/images.json")
    assert json.loads(record.read_text())["cache_key"] == entry.key
    assert record.stat().st_size < 1000  # a record, not a copy of the images
    np.testing.assert_array_equal(dataset.load(), images)
    with pytest.raises(DatasetError, match=r"saves images read from the image cache"):
        dataset.save(np.array(images))
    shutil.rmtree(entry.folder)
    with pytest.raises(DatasetError, match=r"gone or unreadable .*kedro run --pipelines=ingestion"):
        dataset.load()


def test_a_build_removes_the_temporary_folders_of_dead_builds_on_this_host_only(
    image_folder_root, tmp_path
):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a process id that no longer runs
    root = tmp_path / "cache"
    here = root / f".0123abcd.partial-{socket.gethostname()}-{dead.pid}"  # any key
    elsewhere = root / f".0123abcd.partial-another-host-{dead.pid}"  # a shared data/ folder
    alive = root / f".0123abcd.partial-{socket.gethostname()}-{os.getpid()}"
    for folder in (here, elsewhere, alive):
        folder.mkdir(parents=True)
    ImageCache(root).load_or_build(_params(image_folder_root, image_size=8))
    assert not here.exists() and elsewhere.exists() and alive.exists()
