"""Stress training for memory growth: many small epochs in one process, resident memory per epoch.

    PYTHONPATH=src python scripts/stress_memory.py [--epochs 200] [--images 640] [--warmup 20]

Trains a UG-VAE in-process with ``train()`` on the first ``--images`` embedded MNIST training
digits (groups of 32, one group per step, a held-out evaluation and a checkpoint written every
10 epochs), and samples the resident set size (RSS, from /proc/self/statm) at the end of every
epoch. Prints RSS after the warm-up epochs, at the end, the growth between them and its rate per
100 epochs. A leak of even a few kB per step (a kept tensor, a growing history of graphs) shows
up as steady growth; allocator noise does not grow with the epochs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile

import torch

from ugvae_pipeline.data.grouping import random_group_plan, random_groups, split_indices
from ugvae_pipeline.data.sources import load_embedded_mnist
from ugvae_pipeline.models import UGVAE, UGVAEConfig
from ugvae_pipeline.training.config import TrainConfig
from ugvae_pipeline.training.seed import seed_everything
from ugvae_pipeline.training.trainer import train

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    """Resident set size of this process in MiB (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 2**20


class _EpochSampler(logging.Handler):
    """Samples RSS each time the trainer logs the end of an epoch."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.samples: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("epoch %d/%d"):
            self.samples.append(rss_mb())


def measure(
    epochs: int = 200, n_images: int = 640, warmup: int = 20, images=None, metadata=None
) -> dict:
    """Train ``epochs`` epochs; return RSS (MiB) after ``warmup`` epochs, at the end, and per epoch."""
    if images is None:
        images, metadata = load_embedded_mnist()
    plan = random_group_plan(split_indices(metadata, "train")[:n_images], 32, epochs, seed=0)
    heldout = random_groups(split_indices(metadata, "validation"), 2, 32, seed=0)
    sampler = _EpochSampler()
    logger = logging.getLogger("ugvae_pipeline.training.trainer")
    logger.addHandler(sampler)
    previous_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        with tempfile.TemporaryDirectory(prefix="ugvae-stress-") as checkpoints:
            config = TrainConfig(
                epochs=epochs,
                group_size=32,
                seed=0,
                device="cpu",
                progress="off",
                checkpoint_every=10,
                checkpoint_dir=checkpoints,
            )
            seed_everything(0)
            start = rss_mb()
            train(UGVAE(UGVAEConfig()), images, plan, heldout, config)
    finally:
        logger.removeHandler(sampler)
        logger.setLevel(previous_level)
    samples = sampler.samples
    after_warmup, end = samples[warmup - 1], samples[-1]
    return {
        "epochs": epochs,
        "images": n_images,
        "steps": epochs * plan.shape[1],
        "rss_before_mb": round(start, 1),
        "rss_after_warmup_mb": round(after_warmup, 1),
        "rss_end_mb": round(end, 1),
        "rss_max_after_warmup_mb": round(max(samples[warmup - 1 :]), 1),
        "growth_mb": round(end - after_warmup, 2),
        "growth_mb_per_100_epochs": round((end - after_warmup) / (epochs - warmup) * 100, 2),
        "rss_per_epoch_mb": [round(s, 1) for s in samples],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--images", type=int, default=640)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = measure(args.epochs, args.images, args.warmup)
    per_epoch = result.pop("rss_per_epoch_mb")
    print(json.dumps(result, indent=2))
    print("RSS every 20 epochs (MiB):", per_epoch[19::20])


if __name__ == "__main__":
    main()
