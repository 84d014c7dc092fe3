"""The validation monitor of the group code and the choice of the epoch kept
(``train.monitor_every``, ``train.select_epoch``): real digits, real training, real checkpoints."""

from __future__ import annotations

import logging
import signal
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from ugvae_pipeline.data.grouping import random_group_plan, random_groups, split_indices
from ugvae_pipeline.data.grouping.series import series_groups
from ugvae_pipeline.data.grouping.validation import validation_groups
from ugvae_pipeline.data.sources import load_embedded_mnist
from ugvae_pipeline.models import UGVAE, BetaVAE, BetaVAEConfig, UGVAEConfig
from ugvae_pipeline.pipelines.grouping.nodes import build_validation_groups
from ugvae_pipeline.training import checkpoint as ckpt
from ugvae_pipeline.training.batching import GroupBatcher
from ugvae_pipeline.training.config import TrainConfig
from ugvae_pipeline.training.monitor import GroupCodeMonitor, check_validation_groups
from ugvae_pipeline.training.preemption import TrainingInterrupted
from ugvae_pipeline.training.seed import seed_everything
from ugvae_pipeline.training.selection import EpochSelection
from ugvae_pipeline.training.trainer import train

EPOCHS, SEED = 4, 2
GROUPS = {  # the project's grouping parameters, small
    "evaluation": {"strategy": "auto", "split": "test", "random": {"n_groups": 3, "seed": 1}},
    "series": {
        "names": ["even", "odd", "fibonacci", "primes"],
        "groups_per_series": 50,
        "group_size": 32,
        "digits": "first_256",
        "seed": 2024,
    },
}
DATA = {"source": "mnist_embedded"}


@pytest.fixture(scope="module")
def digits():
    """The embedded digits, a 4-epoch plan of 320 training images in groups of 32 (10 steps
    per epoch), two held-out groups and 5 validation groups per digit series."""
    images, metadata = load_embedded_mnist(seed=0)
    plan = random_group_plan(split_indices(metadata, "train")[:320], 32, EPOCHS, seed=SEED)
    validation = split_indices(metadata, "validation")
    heldout = random_groups(validation, 2, 32, seed=0)
    groups, table, _ = series_groups(metadata["label"].to_numpy(), validation, 5, 32, seed=3)
    return images, metadata, plan, heldout, groups, table["group_type"].to_numpy()


def _train(digits, epochs=EPOCHS, every=None, checkpoint_dir=None, **options):
    """UG-VAE (mlp28, small) on the first ``epochs`` epochs of the plan; with ``every``, the
    validation monitor scores every that many epochs."""
    images, _, plan, heldout, groups, types = digits
    config = TrainConfig(
        epochs=epochs,
        group_size=32,
        seed=SEED,
        device="cpu",
        progress="off",
        checkpoint_dir=str(checkpoint_dir or "unused"),
        **options,
    )
    monitor = None if every is None else GroupCodeMonitor(groups, types, every, seed=0)
    seed_everything(SEED)
    model = UGVAE(UGVAEConfig(architecture="mlp28", dim_z=4, dim_beta=5, n_components=3))
    return train(model, images, plan[:epochs], heldout, config, monitor=monitor)


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(value, b.state_dict()[name]) for name, value in a.state_dict().items())


@pytest.fixture(scope="module")
def by_validation(digits):
    """Four epochs scored every epoch, keeping the best on the validation groups."""
    return _train(digits, every=1, select_epoch="validation_svm_linear")


@pytest.fixture(scope="module")
def by_heldout(digits):
    """Four epochs without the monitor, keeping the lowest held-out loss."""
    return _train(digits, select_epoch="heldout_loss")


def _selected(history: pd.DataFrame) -> int:
    (epoch,) = history.loc[history["selected"], "epoch"]
    return int(epoch)


def test_the_monitor_scores_the_group_code_and_its_baselines_every_n_epochs(digits):
    model, history = _train(digits, epochs=3, every=2)
    scored = history["val_seconds"].notna().to_numpy()
    assert scored.tolist() == [False, True, True]  # every 2 epochs, and the last
    for name in ("global_code", "mean_local_code", "mean_mixture_probs", "mean_image"):
        for score in ("svm_linear", "kmeans_ari"):
            values = history[f"val_{name}_{score}"]
            assert values[scored].between(-1, 1).all() and values[~scored].isna().all()
    assert (history.loc[scored, "val_global_code_svm_linear"] >= 0.25 - 1e-9).all()  # 4 types
    assert history.loc[scored, "val_mean_image_svm_linear"].nunique() == 1  # scored once
    assert (history.loc[scored, "val_seconds"] > 0).all()
    assert history["selected"].tolist() == [False, False, True]  # train.select_epoch=last
    assert not model.training
    # μ_β's spread over its posterior std, from the kept (last) model's own encoding: equal up
    # to float32 rounding of the same encoder run in other chunks (~1e-6 relative)
    images, _, _, _, groups, _ = digits
    encoding = model.encode(GroupBatcher(images, torch.device("cpu"))(groups))
    between = encoding.global_mean.double().var(0, unbiased=False).mean()
    expected = float((between / encoding.global_var.double().mean()).sqrt())
    assert history["val_global_code_spread"].iloc[-1] == pytest.approx(expected, rel=1e-4)
    assert history.loc[~scored, "val_global_code_spread"].isna().all()


def test_the_monitor_scores_the_mean_local_code_of_models_without_a_group_code(digits):
    images, _, _, _, groups, types = digits
    torch.manual_seed(0)
    model = BetaVAE(BetaVAEConfig(architecture="mlp28", dim_z=4)).train()
    row = GroupCodeMonitor(groups, types, 1)(
        model, GroupBatcher(images, torch.device("cpu")), images
    )
    assert model.training  # put back in the mode it was in
    assert {k.rsplit("_", 2)[0] for k in row if k != "val_seconds"} == {
        "val_mean_local_code",
        "val_mean_image",
    }


def test_select_heldout_loss_keeps_the_weights_of_that_epoch(digits, by_heldout):
    model, history = by_heldout
    best = int(history.loc[history["heldout_loss"].idxmin(), "epoch"])
    assert best < EPOCHS, "the test needs a run whose best held-out epoch is not the last"
    assert _selected(history) == best
    assert "val_seconds" not in history  # no monitor: the held-out loss needs no labels
    shorter, _ = _train(digits, epochs=best)  # a run of exactly that many epochs
    assert _same_weights(model, shorter)
    last, _ = _train(digits)
    assert not _same_weights(model, last)


def test_select_validation_keeps_the_best_scored_epoch_the_earlier_on_a_tie(digits, by_validation):
    model, history = by_validation
    scores = history["val_global_code_svm_linear"].to_numpy()
    best = int(np.argmax(scores)) + 1  # the first of the best
    assert best < EPOCHS, "the test needs a run whose best validation epoch is not the last"
    assert (scores == scores.max()).sum() > 1, "the test needs a tie for the best score"
    assert _selected(history) == best
    # a plain run of that many epochs (no monitor) ends with the same weights: the selection
    # returned them, and scoring between epochs changed nothing in training
    shorter, _ = _train(digits, epochs=best)
    assert _same_weights(model, shorter)


def test_ties_keep_the_earlier_epoch_and_unscored_epochs_do_not_compete():
    selection = EpochSelection("validation_svm_linear", "val_global_code_svm_linear")
    layer = nn.Linear(1, 1)
    for epoch, score in ((1, 0.5), (2, float("nan")), (3, 0.75), (4, 0.75), (5, 0.5)):
        with torch.no_grad():
            layer.weight.fill_(epoch)
        selection.offer({"epoch": epoch, "val_global_code_svm_linear": score}, layer)
    selection.offer({"epoch": 6}, layer)  # not scored
    assert selection.apply(layer, 6) == 3 and layer.weight.item() == 3
    lowest = EpochSelection("heldout_loss", "heldout_loss")
    for epoch, loss in ((1, 5.0), (2, 3.0), (3, 3.0), (4, 4.0)):
        lowest.offer({"epoch": epoch, "heldout_loss": loss}, layer)
    assert lowest.epoch == 2 and lowest.value == 3.0
    last = EpochSelection("last", None)
    assert not last.offer({"epoch": 1, "heldout_loss": 1.0}, layer) and last.saved() is None


def _sigterm_in_epoch(monkeypatch, epoch: int, steps_per_epoch: int = 10) -> None:
    """A real SIGTERM while the third step of ``epoch`` computes its loss."""
    from ugvae_pipeline.training import trainer

    calls, loss = [], trainer.annealed_loss

    def annealed_loss(*args, **kwargs):
        calls.append(1)
        if len(calls) == (epoch - 1) * steps_per_epoch + 3:
            signal.raise_signal(signal.SIGTERM)
        return loss(*args, **kwargs)

    monkeypatch.setattr(trainer, "annealed_loss", annealed_loss)


def test_a_resumed_run_keeps_the_epoch_chosen_before_the_interruption(
    digits, by_heldout, tmp_path, monkeypatch
):
    reference, reference_history = by_heldout
    best = _selected(reference_history)
    _sigterm_in_epoch(monkeypatch, best + 1)  # after the best epoch: its weights are gone
    with pytest.raises(TrainingInterrupted):
        _train(digits, checkpoint_dir=tmp_path, select_epoch="heldout_loss")
    saved = ckpt.load_checkpoint(ckpt.checkpoint_path(tmp_path))
    assert saved["epoch"] == best and saved["selection"]["epoch"] == best
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"select_epoch: checkpoint 'heldout_loss', this run None"):
        _train(digits, checkpoint_dir=tmp_path, resume=True)  # another choice: refused
    model, history = _train(
        digits, checkpoint_dir=tmp_path, resume=True, select_epoch="heldout_loss"
    )
    assert _selected(history) == best
    assert _same_weights(model, reference)


def test_choosing_on_validation_without_validation_groups_is_refused_before_training(
    digits, monkeypatch
):
    from ugvae_pipeline.training import trainer

    steps = []
    monkeypatch.setattr(trainer, "annealed_loss", lambda *a: steps.append(1))
    with pytest.raises(ValueError, match=r"train.select_epoch=validation_svm_linear .* none"):
        _train(digits, select_epoch="validation_svm_linear")
    assert steps == []
    with pytest.raises(
        ValueError,
        match=r"train.select_epoch=validation_svm_linear .*"
        r"train.monitor_every=0",
    ):
        TrainConfig(select_epoch="validation_svm_linear", monitor_every=0)
    with pytest.raises(ValueError, match=r"train.select_epoch='best' is unknown"):
        TrainConfig(select_epoch="best")
    with pytest.raises(ValueError, match=r"train.monitor_groups must be an integer >= 5"):
        TrainConfig(monitor_groups=4)
    with pytest.raises(ValueError, match=r"train.monitor_every must be an integer >= 0"):
        TrainConfig(monitor_every=-1)


def test_validation_groups_are_structured_groups_of_validation_images_only(digits):
    _, metadata, *_ = digits
    groups, table = validation_groups(metadata, GROUPS, DATA, groups_per_type=6, seed=4)
    assert groups.shape == (24, 32)  # 6 per series, the strategy's group size, no random ones
    assert table["group_type"].value_counts().to_dict() == {
        name: 6 for name in GROUPS["series"]["names"]
    }
    splits = metadata["split"].to_numpy()
    assert set(splits[groups.ravel()]) == {"validation"}
    assert check_validation_groups(groups, table["group_type"].to_numpy()) is None
    again, _ = validation_groups(metadata, GROUPS, DATA, groups_per_type=6, seed=5)
    assert not np.array_equal(groups, again)  # train.monitor_seed draws them


def test_validation_groups_too_small_turn_the_monitor_off_or_refuse_the_choice(digits, caplog):
    _, metadata, *_ = digits
    small = metadata.copy()
    small.loc[small["split"] == "validation", "label"] = 0  # only zeros: the series need 1..9
    train_params = {"monitor_every": 5, "monitor_groups": 5}
    with caplog.at_level(logging.WARNING):
        groups, table = build_validation_groups(small, GROUPS, DATA, train_params)
    assert groups.size == 0 and table.empty
    assert "validation scores of the group code are off" in caplog.text
    assert "no image of digit(s)" in caplog.text  # the reason
    with pytest.raises(ValueError, match=r"train.select_epoch=validation_svm_linear .*no image"):
        build_validation_groups(
            small, GROUPS, DATA, {**train_params, "select_epoch": "validation_svm_linear"}
        )
    off, _ = build_validation_groups(metadata, GROUPS, DATA, {"monitor_every": 0})
    assert off.size == 0  # nothing reads them: not built
    groups, _ = build_validation_groups(metadata, GROUPS, DATA, train_params)
    assert groups.shape == (20, 32)


def test_check_validation_groups_names_what_cannot_be_scored():
    groups = np.zeros((8, 4), dtype=np.int64)
    assert "at least two" in check_validation_groups(groups, np.array(["a"] * 8))
    assert "at least 5 groups" in check_validation_groups(groups, np.array(["a"] * 4 + ["b"] * 4))


def test_data_parallel_training_scores_on_rank_0_and_resumes_with_its_choice(digits, tmp_path):
    """Two Gloo processes: rank 0 scores and chooses; every rank shares the resume signature,
    so a resume of the run (nothing left to train) is accepted on both and keeps the choice."""
    from ugvae_pipeline.training.distributed import spawn_training

    images, _, plan, heldout, groups, types = digits
    config = TrainConfig(
        epochs=2,
        group_size=32,
        seed=SEED,
        device="cpu",
        progress="off",
        devices=2,
        checkpoint_every=1,
        checkpoint_dir=str(tmp_path),
        select_epoch="validation_svm_linear",
        monitor_every=1,
    )
    monitor = GroupCodeMonitor(groups, types, 1, seed=0)
    runs = []
    for resume in (False, True):
        seed_everything(SEED)
        model = UGVAE(UGVAEConfig(architecture="mlp28", dim_z=4, dim_beta=5, n_components=3))
        runs.append(
            spawn_training(
                model, images, plan[:2], heldout, replace(config, resume=resume), monitor=monitor
            )
        )
    (model, history), (resumed, resumed_history) = runs
    scores = history["val_global_code_svm_linear"].to_numpy()
    assert np.isfinite(scores).all()  # scored on rank 0 every epoch
    assert _selected(history) == int(np.argmax(scores)) + 1
    assert _selected(resumed_history) == _selected(history)
    assert _same_weights(model, resumed)
