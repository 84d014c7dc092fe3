"""Checkpoints: atomic writes, exact resume after a real SIGKILL, refusal of a foreign checkpoint."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.equivalence import assert_same_weights
from ugvae_pipeline.data.grouping import random_group_plan, random_groups
from ugvae_pipeline.models import UGVAE, UGVAEConfig
from ugvae_pipeline.training import checkpoint as ckpt
from ugvae_pipeline.training.config import TrainConfig
from ugvae_pipeline.training.seed import seed_everything
from ugvae_pipeline.training.trainer import train

ENTRY = Path(__file__).with_name("train_entry.py")
SRC = Path(__file__).resolve().parents[2] / "src"


def _start(out: Path, checkpoint_dir: Path, epochs: int, resume: bool) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    return subprocess.Popen(
        [
            sys.executable,
            str(ENTRY),
            str(out),
            str(checkpoint_dir),
            str(epochs),
            "1" if resume else "0",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _checkpoint_epoch(path: Path) -> int:
    return ckpt.load_checkpoint(path)["epoch"] if path.exists() else 0


def test_killed_run_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path):
    epochs, kill_after = 10, 2
    victim = _start(tmp_path / "never.pt", tmp_path / "ck", epochs, resume=False)
    reference = _start(tmp_path / "reference.pt", tmp_path / "ck_reference", epochs, resume=False)
    checkpoint = ckpt.checkpoint_path(tmp_path / "ck")
    deadline = time.monotonic() + 240
    while _checkpoint_epoch(checkpoint) < kill_after and victim.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(60)
    assert victim.returncode == -signal.SIGKILL, (
        f"not killed mid-training: {victim.stderr.read()[-2000:]}"
    )
    at_kill = ckpt.load_checkpoint(checkpoint)  # whatever moment the kill hit, the file loads
    assert kill_after <= at_kill["epoch"] < epochs
    assert not (tmp_path / "never.pt").exists()

    resumed = _start(tmp_path / "resumed.pt", tmp_path / "ck", epochs, resume=True)
    for process in (resumed, reference):
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]

    final = ckpt.load_checkpoint(checkpoint)
    assert [row["epoch"] for row in final["history"]] == list(range(1, epochs + 1))
    # the epochs before the kill were carried over, not retrained (their timings are the same)
    assert final["history"][: at_kill["epoch"]] == at_kill["history"]
    # bit for bit (tests/equivalence.py): both processes run the same operations on one thread
    expected = torch.load(tmp_path / "reference.pt", weights_only=True)
    assert_same_weights(torch.load(tmp_path / "resumed.pt", weights_only=True), expected)


def test_an_interrupted_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ck" / "c.pt"
    ckpt.save_checkpoint(path, {"epoch": 1, "weights": torch.ones(3)})

    def torn_save(obj, file):
        file.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt.torch, "save", torn_save)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(path, {"epoch": 2, "weights": torch.zeros(3)})
    state = ckpt.load_checkpoint(path)
    assert state["epoch"] == 1 and torch.equal(state["weights"], torch.ones(3))
    assert sorted(p.name for p in path.parent.iterdir()) == ["c.pt"]  # no temporary file left


def test_truncated_or_unsafe_checkpoint_is_refused_by_name(tmp_path):
    path = tmp_path / "c.pt"
    ckpt.save_checkpoint(path, {"epoch": 1, "weights": torch.ones(100)})
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(
        ValueError, match=r"cannot load training checkpoint .*c.pt.*train.resume=false"
    ):
        ckpt.load_checkpoint(path)
    torch.save({"format_version": 1, "epoch": 1, "hook": random.Random()}, path)  # needs unpickling
    with pytest.raises(ValueError, match=r"cannot load training checkpoint .*weights_only"):
        ckpt.load_checkpoint(path)


def test_rng_states_round_trip_through_a_weights_only_file(tmp_path):
    seed_everything(11)
    generator = torch.Generator().manual_seed(3)
    ckpt.save_checkpoint(tmp_path / "c.pt", {"rng": ckpt.capture_rng_states(generator)})

    def draws():
        return (
            random.random(),
            np.random.rand(),
            np.random.randn(),
            torch.rand(2).tolist(),
            torch.randn(2, generator=generator).tolist(),
        )

    first = draws()
    seed_everything(99)
    generator.manual_seed(0)
    ckpt.restore_rng_states(ckpt.load_checkpoint(tmp_path / "c.pt")["rng"], generator)
    assert draws() == first


def _tiny_run(
    checkpoint_dir,
    seed=7,
    dim_beta=5,
    resume=False,
    plan_seed=None,
    epochs=1,
    run_id=None,
    checkpoint_every=1,
    heldout_seed=0,
    regroup=None,
    **options,
):
    """UG-VAE on 320 pseudo-random images in groups of 32: 10 steps per epoch."""
    images = np.random.default_rng(0).integers(0, 256, (352, 1, 28, 28), dtype=np.uint8)
    config = TrainConfig(
        epochs=epochs,
        group_size=32,
        seed=seed,
        device="cpu",
        progress="off",
        checkpoint_every=checkpoint_every,
        checkpoint_dir=str(checkpoint_dir),
        resume=resume,
        **options,
    )
    plan_seed = seed if plan_seed is None else plan_seed
    plan = random_group_plan(np.arange(320), 32, epochs, seed=plan_seed)
    heldout = random_groups(np.arange(320, 352), 1, 32, seed=heldout_seed)
    seed_everything(seed)
    return train(
        UGVAE(UGVAEConfig(dim_z=4, dim_beta=dim_beta, n_components=3)),
        images,
        plan,
        heldout,
        config,
        run_id=run_id,
        regroup=regroup,
    )


def test_resume_from_a_checkpoint_of_another_configuration_is_refused(tmp_path):
    _tiny_run(tmp_path)
    refused = r"refusing to resume from .*ugvae_checkpoint.pt: it was written by a run with another configuration"
    with pytest.raises(ValueError, match=refused + r".*seed: checkpoint 7, this run 8"):
        _tiny_run(tmp_path, seed=8, plan_seed=7, resume=True)
    with pytest.raises(
        ValueError,
        match=r"another configuration \(model: checkpoint .*'dim_beta': 5.*'dim_beta': 6",
    ):
        _tiny_run(tmp_path, dim_beta=6, resume=True)
    with pytest.raises(ValueError, match=r"train_groups: checkpoint '[0-9a-f]{64}'"):
        _tiny_run(tmp_path, plan_seed=1, resume=True)
    # a different optimisation or evaluation would silently be another run too
    for options, difference in [
        ({"learning_rate": 1e-3}, r"learning_rate: checkpoint 0.005, this run 0.001"),
        ({"precision": "bf16"}, r"precision: checkpoint 'fp32', this run 'bfloat16'"),
        (
            {"heldout_seed": 1},
            r"heldout_groups: checkpoint '[0-9a-f]{64}', this run '[0-9a-f]{64}'",
        ),
    ]:
        with pytest.raises(ValueError, match=refused + r" \(.*" + difference):
            _tiny_run(tmp_path, resume=True, **options)
    model, history = _tiny_run(
        tmp_path, resume=True
    )  # the same run resumes (nothing left to train)
    assert list(history["epoch"]) == [1]


def test_resume_without_a_checkpoint_is_refused_naming_the_fix(tmp_path):
    # a resume must not silently start again at epoch 1
    with pytest.raises(
        ValueError,
        match=r"train.resume=true but there is no checkpoint at .*empty.*train.resume=false",
    ):
        _tiny_run(tmp_path / "empty", resume=True)
    assert not ckpt.checkpoint_path(tmp_path / "empty").exists()


def _preemptible_run(checkpoint_dir, epochs=2, resume=False, **options):
    """Two epochs, checkpoints only on a signal, tracked as run ``run-that-was-stopped``."""
    return _tiny_run(
        checkpoint_dir,
        resume=resume,
        epochs=epochs,
        run_id="run-that-was-stopped",
        checkpoint_every=0,
        **options,
    )


def _sigterm_at_step(monkeypatch, at: int | None) -> list[int]:
    """Send this process a real SIGTERM while step ``at`` (counted over the run) computes its loss."""
    from ugvae_pipeline.training import trainer

    calls, loss = [], trainer.annealed_loss

    def annealed_loss(*args, **kwargs):
        calls.append(1)
        if at is not None and len(calls) == at:
            signal.raise_signal(signal.SIGTERM)
        return loss(*args, **kwargs)

    monkeypatch.setattr(trainer, "annealed_loss", annealed_loss)
    return calls


def test_sigterm_finishes_the_step_checkpoints_it_and_resume_ends_where_a_whole_run_does(
    tmp_path, monkeypatch
):
    from ugvae_pipeline.training.preemption import TrainingInterrupted

    reference, reference_history = _preemptible_run(tmp_path / "reference")
    handler = signal.getsignal(signal.SIGTERM)
    calls = _sigterm_at_step(monkeypatch, at=13)  # epoch 2, step 3
    with pytest.raises(
        TrainingInterrupted, match=r"SIGTERM: training stopped after epoch 2, step 3/10"
    ):
        _preemptible_run(tmp_path / "ck")
    assert len(calls) == 13  # the step in flight finished; no further step started
    assert signal.getsignal(signal.SIGTERM) is handler  # the trainer's handler is gone
    state = ckpt.load_checkpoint(ckpt.checkpoint_path(tmp_path / "ck"))
    assert (state["epoch"], state["step"], state["run_id"]) == (1, 3, "run-that-was-stopped")
    calls = _sigterm_at_step(monkeypatch, at=None)  # count the resumed run's steps

    resumed, history = _preemptible_run(tmp_path / "ck", resume=True)
    assert len(calls) == 7  # it continued at epoch 2, step 4
    # bit for bit (tests/equivalence.py): the same operations, in this process, on its threads
    assert_same_weights(resumed.state_dict(), reference.state_dict())
    for column in ("train_loss", "heldout_loss"):  # epoch 2's row counts its 3 steps before too
        # the same float64 sums in the same order: the checkpoint's partial sums, then the rest
        np.testing.assert_array_equal(history[column], reference_history[column])


def test_without_checkpoint_on_signal_the_run_stops_after_the_step_writing_nothing(
    tmp_path, monkeypatch
):
    from ugvae_pipeline.training.preemption import TrainingInterrupted

    _sigterm_at_step(monkeypatch, at=4)
    with pytest.raises(
        TrainingInterrupted, match=r"after epoch 1, step 4/10 \(train.checkpoint_on"
    ):
        _preemptible_run(tmp_path / "ck", checkpoint_on_signal=False)
    assert not ckpt.checkpoint_path(tmp_path / "ck").exists()


def test_a_signal_after_the_last_step_is_passed_on_when_training_ends(tmp_path, monkeypatch):
    from ugvae_pipeline.training import trainer

    evaluations, evaluate = [], trainer.evaluate_loss

    def evaluate_loss(*args, **kwargs):  # the last epoch's held-out loss: after its last step
        evaluations.append(1)
        if len(evaluations) == 2:
            signal.raise_signal(signal.SIGTERM)
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(trainer, "evaluate_loss", evaluate_loss)
    received = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        _, history = _preemptible_run(tmp_path / "ck")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert len(history) == 2 and received == [signal.SIGTERM]  # not lost: delivered after


def test_a_run_that_redraws_its_groups_resumes_on_the_redrawn_groups(tmp_path, monkeypatch):
    from ugvae_pipeline.training.preemption import TrainingInterrupted
    from ugvae_pipeline.training.regroup import ClusterRefresh

    # k-means of the model's local codes after epoch 2 of 4; groups of one or two clusters
    regroup = ClusterRefresh(np.arange(320), "local_codes", 4, 0.05, 2, 0, 7, 32)
    reference, _ = _preemptible_run(tmp_path / "reference", epochs=4, regroup=regroup)
    _sigterm_at_step(monkeypatch, at=35)  # epoch 4, step 5: after the redraw
    with pytest.raises(TrainingInterrupted, match=r"after epoch 4, step 5/10"):
        _preemptible_run(tmp_path / "ck", epochs=4, regroup=regroup)
    state = ckpt.load_checkpoint(ckpt.checkpoint_path(tmp_path / "ck"))
    assert state["regrouped"]["epoch"] == 2 and state["regrouped"]["clusters"].shape == (320,)
    _sigterm_at_step(monkeypatch, at=None)
    resumed, _ = _preemptible_run(tmp_path / "ck", epochs=4, resume=True, regroup=regroup)
    # bit for bit: the resumed run trains epochs 3-4 on the groups the redraw drew
    assert_same_weights(resumed.state_dict(), reference.state_dict())
    # the redraw changes what is trained on: the plan alone ends elsewhere
    plain, _ = _preemptible_run(tmp_path / "plain", epochs=4)
    assert not torch.equal(
        plain.state_dict()["decoder.0.weight"], reference.state_dict()["decoder.0.weight"]
    )
    # a resume that would redraw differently (another refresh) is refused
    other = ClusterRefresh(np.arange(320), "mixture_probs", 4, 0.05, 2, 0, 7, 32)
    with pytest.raises(ValueError, match=r"another configuration .*regroup"):
        _preemptible_run(tmp_path / "ck", epochs=4, resume=True, regroup=other)
