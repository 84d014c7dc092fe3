"""The shared progress display: log lines with rate and ETA off a terminal; one helper for all jobs."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ugvae_pipeline import progress as progress_module
from ugvae_pipeline.evaluation.encoding import encode_groups
from ugvae_pipeline.models import UGVAE, UGVAEConfig
from ugvae_pipeline.progress import Progress, TrainingProgress


def test_log_mode_reports_count_rate_and_eta(caplog):
    logger = logging.getLogger("ugvae_test.progress")
    with caplog.at_level(logging.INFO, logger=logger.name):
        with Progress(10, "decode", "images", mode="log", log_every=4, logger=logger) as bar:
            for _ in range(10):
                bar.update()
    lines = caplog.messages
    assert [line.split(" (")[0] for line in lines] == [
        "decode: 4/10 images",
        "decode: 8/10 images",
        "decode: 10/10 images",
    ]
    assert all("images/s, ETA " in line for line in lines)
    assert lines[-1].endswith("ETA 0s)")


def test_updates_of_several_items_cross_log_boundaries(caplog):
    logger = logging.getLogger("ugvae_test.progress")
    with caplog.at_level(logging.INFO, logger=logger.name):
        bar = Progress(100, "extract", "groups", mode="log", logger=logger)  # every 10 %
        for _ in range(4):
            bar.update(32)
    assert [m.split(" (")[0] for m in caplog.messages] == [
        f"extract: {n}/100 groups" for n in (32, 64, 96, 128)
    ]


def test_off_is_silent_and_bad_modes_are_refused(caplog):
    with caplog.at_level(logging.INFO):
        for mode in ("off", False):  # False: YAML 1.1 reads an unquoted `off` as false
            bar = Progress(3, "x", mode=mode)
            for _ in range(3):
                bar.update()
    assert not caplog.messages
    with pytest.raises(
        ValueError, match=r"progress='fast' is unknown; use one of \('auto', 'bar', 'log', 'off'\)"
    ):
        Progress(3, "x", mode="fast")


def test_training_progress_shows_epoch_and_loss(caplog):
    with caplog.at_level(logging.INFO, logger="ugvae_pipeline.training.trainer"):
        bar = TrainingProgress("log", total=4, log_every=2)
        for done in range(1, 5):
            bar.step(done, epoch=1 + (done > 2), loss=None if done == 1 else 1.5)
    assert [m.split(" (")[0] for m in caplog.messages] == ["train: 2/4 steps", "train: 4/4 steps"]
    assert caplog.messages[-1].endswith("epoch 2 loss 1.500")


def test_extraction_logs_progress_by_groups(caplog):
    model = UGVAE(UGVAEConfig(dim_beta=4, dim_z=3, n_components=2))
    images = np.random.default_rng(0).integers(0, 256, (40, 1, 28, 28), dtype=np.uint8)
    groups = np.arange(40).reshape(10, 4)
    with caplog.at_level(logging.INFO, logger="ugvae_pipeline.evaluation.encoding"):
        codes = encode_groups(model, images, groups, chunk=3, progress="log")
    assert codes.global_code.shape == (10, 4)
    assert caplog.messages[-1].startswith("extract: 10/10 groups (")


def test_one_progress_class_serves_every_job():
    from ugvae_pipeline.data import imaging
    from ugvae_pipeline.training import trainer

    assert not hasattr(imaging, "_Progress")
    assert trainer._Progress is TrainingProgress and issubclass(
        TrainingProgress, progress_module.Progress
    )


def test_durations_read_naturally():
    assert [progress_module._duration(s) for s in (4.4, 75, 3725, float("inf"))] == [
        "4s",
        "1m15s",
        "1h02m",
        "?",
    ]
