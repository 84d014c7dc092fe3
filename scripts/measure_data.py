"""Measure the data layer: grouping speed and ingestion peak memory.

    PYTHONPATH=src python scripts/measure_data.py [--images 20000] [--folder /tmp/ugvae_folder]

1. Time to build 10,000 random-offset groups of 128 from MNIST-size arrays (60,000 labels):
   windows of a digit sequence, each digit replaced by a random image of that class.
2. Images per second the training input path (``GroupBatcher``: uint8 cache -> float groups
   ``[G, B, C, H, W]``) delivers, against what a UG-VAE training step consumes, for the
   resident MNIST cache (mlp28) and a memory-mapped 64x64 RGB cache (conv64).
3. Peak resident memory of ingesting a generated folder of 64x64 RGB JPEGs (written under
   /tmp, never in the repository), against the size of its uint8 cache, in a fresh subprocess.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ugvae_pipeline.data.grouping import draw_by_value, sample_groups, window_groups

MEASURE_INGESTION = """
import json, resource, sys, time
from ugvae_pipeline.data.image_folder import load_image_folder
from ugvae_pipeline.datasets import NumpyArrayDataset
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
images, metadata = load_image_folder(sys.argv[1], channels=3, image_size=64)
seconds = time.perf_counter() - start
after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
NumpyArrayDataset(filepath=sys.argv[2]).save(images)
after_save = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"images": len(images), "cache_mb": images.nbytes / 1e6, "seconds": seconds,
                  "baseline_mb": before / 1e3, "load_peak_mb": (after_load - before) / 1e3,
                  "save_peak_mb": (after_save - before) / 1e3}))
"""


def time_groups(n_groups: int = 10_000, group_size: int = 128, repeats: int = 5) -> dict:
    """Best-of-``repeats`` seconds for window + class draws and for plain random groups."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 60_000)  # MNIST-size label array
    sequence = rng.integers(0, 10, 20_000)  # a digit series
    timings = {"window_then_draw_s": [], "sample_groups_s": []}
    for _ in range(repeats):
        start = time.perf_counter()
        groups = draw_by_value(window_groups(sequence, n_groups, group_size, rng), labels, rng)
        timings["window_then_draw_s"].append(time.perf_counter() - start)
        start = time.perf_counter()
        sample_groups(np.arange(60_000), n_groups, group_size, rng)
        timings["sample_groups_s"].append(time.perf_counter() - start)
    assert groups.shape == (n_groups, group_size)
    return {name: min(values) for name, values in timings.items()}


def write_folder(folder: Path, n_images: int, size: int = 64) -> None:
    """``n_images`` small JPEGs in 10 subfolders (skipped when already there)."""
    from PIL import Image

    if folder.is_dir() and sum(1 for _ in folder.rglob("*.jpg")) == n_images:
        return
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    for index in range(n_images):
        sub = folder / f"class{index % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.roll(base, index, axis=1)).save(sub / f"{index:06d}.jpg", quality=85)


def time_input_path(
    cache: Path, groups_per_step: int = 8, group_size: int = 128, repeats: int = 5
) -> list[dict]:
    """Input-path vs training-step images/s, on the same index groups, CPU."""
    import torch

    from ugvae_pipeline.data.sources import load_embedded_mnist
    from ugvae_pipeline.models import UGVAE, UGVAEConfig
    from ugvae_pipeline.training.batching import GroupBatcher

    rng = np.random.default_rng(0)
    rows = []
    mnist, _ = load_embedded_mnist()
    cases = [
        ("mlp28", "resident", mnist, UGVAEConfig()),
        (
            "conv64",
            "memory-mapped",
            np.load(cache, mmap_mode="r"),
            UGVAEConfig(
                architecture="conv64",
                channels=3,
                image_size=64,
                dim_z=20,
                dim_beta=20,
                n_components=20,
            ),
        ),
    ]
    for arch, kind, images, config in cases:
        batcher = GroupBatcher(images, torch.device("cpu"))
        if kind == "memory-mapped":
            batcher.resident = (
                None  # read through the memory map, as for a cache over the resident limit
            )
        index = rng.integers(0, len(images), (groups_per_step, group_size))
        model = UGVAE(config)
        optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)

        def step():
            loss = model(batcher(index)).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        for what, fn, n in (("input", lambda: batcher(index), 20), ("train_step", step, 2)):
            fn()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                for _ in range(n):
                    fn()
                times.append((time.perf_counter() - start) / n)
            rows.append(
                {
                    "arch": arch,
                    "cache": kind,
                    "what": what,
                    "images_per_second": round(index.size / float(np.median(times))),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/ugvae_folder"))
    args = parser.parse_args()
    print(json.dumps({"grouping": time_groups()}))
    write_folder(args.folder, args.images)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            MEASURE_INGESTION,
            str(args.folder),
            str(args.folder.parent / "ugvae_cache.npy"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    print(json.dumps({"ingestion": json.loads(result.stdout.strip().splitlines()[-1])}))
    print(json.dumps({"input_path": time_input_path(args.folder.parent / "ugvae_cache.npy")}))


if __name__ == "__main__":
    main()
