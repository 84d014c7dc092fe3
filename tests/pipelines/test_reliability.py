"""Failures, interruptions and concurrent runs, through real Kedro sessions and MLflow stores."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import run_kedro
from tests.equivalence import assert_same_weights
from tests.pipelines.signal_points import GO_FD, READY_FD, cli_run, signal_at
from ugvae_pipeline import plotting
from ugvae_pipeline.hooks import InterruptedRunHook, RunInterrupted
from ugvae_pipeline.training import checkpoint as ckpt

TINY = {
    "data": {"source": "uci_digits"},  # 1,797 digits: fast to ingest and to train on
    "train": {"epochs": 2, "group_size": 32, "progress": "off"},
    "model": {"dim_beta": 4},
    "groups": {"heldout": {"n_groups": 2, "group_size": 32, "seed": 0}},
    "figures": {"n_groups": 1, "n_images": 8, "seed": 0},
}
SRC = Path(__file__).resolve().parents[2] / "src"


def _runs(project: Path):
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ugvae_pipeline")
    return client, client.search_runs([experiment.experiment_id])


def test_nan_loss_fails_the_run_naming_the_cause(project_copy):
    params = {
        **TINY,
        "model": {"dim_beta": 4, "var_x": 1e-45},  # the reconstruction term overflows to inf
        "train": {**TINY["train"], "log_every": 1},  # checked every step
    }
    with pytest.raises(
        FloatingPointError, match=r"loss became (inf|nan) at epoch 1, step 1;.*model.var_x"
    ):
        run_kedro(project_copy, "train", params)
    _, (run,) = _runs(project_copy)
    assert run.info.status == "FAILED"
    assert run.data.params["model.var_x"] == "1e-45"  # what was logged before the failure is kept


def test_unreadable_image_fails_the_run_naming_the_file(project_copy):
    root = project_copy / "data" / "01_raw" / "images"
    root.mkdir(parents=True)
    (root / "photo.jpg").write_text("this is text, not a JPEG")
    params = {**TINY, "data": {"source": "image_folder", "image_folder": {"root": str(root)}}}
    with pytest.raises(ValueError, match=r"cannot read image .*photo.jpg.*skip_bad_images"):
        run_kedro(project_copy, "train", params)
    _, (run,) = _runs(project_copy)
    assert run.info.status == "FAILED"


@pytest.mark.parametrize(
    "sig, name",
    [(signal.SIGINT, r"SIGINT \(Ctrl-C\)"), (signal.SIGTERM, "SIGTERM")],
    ids=["ctrl_c", "sigterm"],
)
def test_a_signal_kills_the_run_keeping_artifacts_and_the_last_checkpoint(
    project_copy, monkeypatch, sig, name
):
    def interrupt(*args, **kwargs):
        signal.raise_signal(sig)  # a real signal, as from the terminal or a scheduler

    monkeypatch.setattr(
        plotting, "component_samples_figure", interrupt
    )  # after training and its logging
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    params = {**TINY, "train": {**TINY["train"], "checkpoint_every": 1}}
    with pytest.raises(RunInterrupted, match=rf"{name} during node plot_training_figures"):
        run_kedro(project_copy, "train", params)
    assert {
        s: signal.getsignal(s) for s in handlers
    } == handlers  # the session's handlers are restored

    client, (run,) = _runs(project_copy)
    assert run.info.status == "KILLED"
    assert run.data.tags["killed_by"] == name.replace("\\", "")
    logged = [a.path for a in client.list_artifacts(run.info.run_id, "history")]
    assert logged == ["history/training_history.csv"]
    assert "train_loss" in run.data.metrics
    # the checkpoint lives where conf/base/parameters_training.yml puts it, and loads
    state = ckpt.load_checkpoint(
        project_copy / "data" / "06_models" / "checkpoints" / ckpt.FILENAME
    )
    assert state["epoch"] == 2 and [row["epoch"] for row in state["history"]] == [1, 2]


@pytest.mark.parametrize(
    "pipeline, params, message",
    [
        (
            "train",
            {"groups": {"heldout": {"group_size": -1}}},
            r"groups.heldout.group_size must be an integer >= 1, got -1",
        ),
        (
            "train",
            {"data": {"test_fraction": "0.2"}},
            r"data.test_fraction must be a number, got '0.2'",
        ),
        (
            "train",
            {"data": {"source": "svhn"}},
            r"data.source='svhn' is unknown; choose one of 'mnist_embedded'",
        ),
        (
            "train",
            {"groups": {"series": {"group_szie": 64}}},
            r"unknown parameter groups.series.group_szie; valid names there",
        ),
        (
            "train",
            {"groups": {"evaluation": {"strategy": "hair"}}},
            r"groups.evaluation.strategy='hair' is unknown",
        ),
        (
            "train",
            {"train": {"checkpoint_every": -2}},
            r"train.checkpoint_every must be an integer >= 0",
        ),
        (
            "train",
            {"train": {"device": "cuda:x"}},
            r"train.device='cuda:x' is unknown; use one of .*, cuda:N or mps:N",
        ),
        (
            "train",
            {"model": {"name": "vqvae"}},
            r"model.name='vqvae' is unknown; choose one of "
            r"\['beta_vae', 'gmvae', 'mlvae', 'neural_statistician', 'ugvae'\]",
        ),
        ("train", {"model": {"name": "beta_vae", "beta": -1}}, r"model.beta must be a number >= 0"),
        (
            "__default__",
            {"extract": {"progress": "quiet"}},
            r"extract.progress='quiet' is unknown; use one of",
        ),
        # a full run would train, then fail at the evaluation: class groups are named label=<k>
        (
            "__default__",
            {
                "groups": {"evaluation": {"strategy": "class"}},
                "evaluate": {"interpolation": {"from_type": "even", "to_type": "odd"}},
            },
            r"evaluate.interpolation.from_type='even' is not a class group type: class groups are named 'label=<value>'",
        ),
        (  # the README's own-data command with a strategy an unlabelled folder cannot build
            "train",
            {"data": {"source": "image_folder"}, "groups": {"evaluation": {"strategy": "series"}}},
            r"groups.evaluation.strategy=series cannot be built from data.source=image_folder",
        ),
        (
            "evaluate",
            {"evaluate": {"interpolation": {"to_type": "blue"}}},
            r"to_type='blue' is not a group type of groups.evaluation.strategy=series; choose one of \['even'",
        ),
    ],
    ids=[
        "groups",
        "data",
        "data_source",
        "typo",
        "evaluation_strategy",
        "train",
        "train_device",
        "model_name",
        "beta_vae_beta",
        "extract_progress",
        "interpolation_types",
        "source_strategy",
        "evaluate_alone",
    ],
)
def test_bad_parameters_stop_the_run_before_any_node(project_copy, pipeline, params, message):
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(ValueError, match=message):
        run_kedro(project_copy, pipeline, params)
    assert not (project_copy / "data" / "02_intermediate").exists()
    assert mlflow.active_run() is None  # no MLflow run was opened, to be left RUNNING
    assert _runs(project_copy)[1] == []
    assert signal.getsignal(signal.SIGINT) is handler


def test_two_concurrent_kedro_runs_both_finish_with_their_own_outputs(project_copy):
    params = (
        "data.source=uci_digits,train.epochs=1,train.group_size=32,train.progress=off,model.dim_beta=4,"
        "groups.heldout.n_groups=2,groups.heldout.group_size=32,figures.n_groups=1"
    )
    env = {
        **os.environ,
        "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "OMP_NUM_THREADS": "1",
        "KEDRO_DISABLE_TELEMETRY": "true",
    }
    command = [sys.executable, "-m", "kedro", "run", "--pipeline=train", "--params", params]
    # both start on a project without mlflow.db: they race to create and migrate the store
    processes = [
        subprocess.Popen(
            command,
            cwd=project_copy,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    for process in processes:
        out, _ = process.communicate(timeout=500)
        assert process.returncode == 0, out[-3000:]

    models = sorted((project_copy / "data" / "06_models" / "model.pt").glob("*/model.pt"))
    histories = sorted(
        (project_copy / "data" / "08_reporting" / "training_history.csv").glob("*/*.csv")
    )
    assert len(models) == 2 and len(histories) == 2  # two distinct versions, nothing overwritten
    client, runs = _runs(project_copy)
    assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"]
    for run in runs:
        assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [1]
        assert [a.path for a in client.list_artifacts(run.info.run_id, "history")] == [
            "history/training_history.csv"
        ]


def _latest_models(project: Path) -> list[dict]:
    from ugvae_pipeline.models.io import load_model

    paths = sorted((project / "data" / "06_models" / "model.pt").glob("*/model.pt"))
    return [load_model(path.read_bytes()).state_dict() for path in paths]


def test_sigterm_in_training_checkpoints_the_step_and_a_resume_matches_a_whole_run(
    project_copy, monkeypatch
):
    from ugvae_pipeline.training import trainer
    from ugvae_pipeline.training.preemption import TrainingInterrupted

    run_kedro(project_copy, "train", {**TINY, "train": {**TINY["train"], "checkpoint_dir": "ref"}})
    params = {**TINY, "train": {**TINY["train"], "checkpoint_dir": "data/ck"}}
    calls, loss = [], trainer.annealed_loss

    def annealed_loss(*args, **kwargs):  # a real SIGTERM, in the middle of a step of epoch 2
        calls.append(1)
        if len(calls) == 50:
            signal.raise_signal(signal.SIGTERM)
        return loss(*args, **kwargs)

    monkeypatch.setattr(trainer, "annealed_loss", annealed_loss)
    with pytest.raises(TrainingInterrupted, match=r"SIGTERM: training stopped after epoch 2, step"):
        run_kedro(project_copy, "training", params)
    monkeypatch.setattr(trainer, "annealed_loss", loss)
    assert len(calls) == 50  # the step finished, none started after it
    state = ckpt.load_checkpoint(project_copy / "data" / "ck" / ckpt.FILENAME)
    assert state["epoch"] == 1 and state["step"] > 0

    run_kedro(project_copy, "training", {**params, "train": {**params["train"], "resume": True}})
    reference, resumed = _latest_models(project_copy)
    assert_same_weights(resumed, reference)  # bit for bit (tests/equivalence.py)
    client, runs = _runs(project_copy)  # newest first
    assert [r.info.status for r in runs] == ["FINISHED", "KILLED", "FINISHED"]
    assert runs[1].data.tags["killed_by"] == "SIGTERM"
    assert runs[0].data.tags["resumed_from"] == runs[1].info.run_id
    steps = [m.step for m in client.get_metric_history(runs[0].info.run_id, "train_loss")]
    assert steps == [1, 2]  # the whole history, the checkpoint's epoch included


def test_a_run_left_running_by_sigkill_is_marked_killed_when_its_resume_starts(project_copy):
    params = {**TINY, "train": {**TINY["train"], "epochs": 3, "checkpoint_every": 1}}
    run_kedro(project_copy, "ingestion", params)
    run_kedro(project_copy, "grouping", params)
    env = {
        **os.environ,
        "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "KEDRO_DISABLE_TELEMETRY": "true",
    }
    flat = (
        "data.source=uci_digits,train.epochs=3,train.checkpoint_every=1,train.group_size=32,"
        "train.progress=off,model.dim_beta=4,groups.heldout.n_groups=2,"
        "groups.heldout.group_size=32,groups.heldout.seed=0"
    )
    victim = subprocess.Popen(
        [sys.executable, "-m", "kedro", "run", "--pipelines=training", "--params", flat],
        cwd=project_copy,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoint = project_copy / "data" / "06_models" / "checkpoints" / ckpt.FILENAME
    deadline = time.monotonic() + 300
    while not checkpoint.exists():  # the first epoch's checkpoint: then a SIGKILL
        assert victim.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    victim.kill()
    victim.wait()
    _, runs = _runs(project_copy)
    (left,) = [r for r in runs if r.info.status == "RUNNING"]  # nothing could end it

    run_kedro(project_copy, "training", {**params, "train": {**params["train"], "resume": True}})
    client, runs = _runs(project_copy)
    by_id = {r.info.run_id: r for r in runs}
    assert by_id[left.info.run_id].info.status == "KILLED"
    # the resumed run, as any run starting, found its process gone
    assert by_id[left.info.run_id].data.tags["killed_by"] == InterruptedRunHook.LOST
    (resumed,) = [r for r in runs if r.data.tags.get("resumed_from") == left.info.run_id]
    assert resumed.info.status == "FINISHED"


def _project_with(project: Path, params: dict) -> None:
    """``params`` in the project's configuration (conf/local), not on the command line."""
    (project / "conf" / "local" / "parameters.yml").write_text(yaml.safe_dump(params))


def test_sigkill_with_checkpoints_off_the_next_run_marks_it_killed_and_a_resume_is_refused(
    project_copy,
):
    params = {**TINY, "train": {**TINY["train"], "checkpoint_every": 0}}  # the default: none
    _project_with(project_copy, params)
    assert cli_run(project_copy, "--pipelines=ingestion,grouping") == 0
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    env = {
        **os.environ,
        "PYTHONPATH": f"{SRC.parent}{os.pathsep}{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "KEDRO_DISABLE_TELEMETRY": "true",
        READY_FD: str(ready_w),
        GO_FD: str(go_r),
    }
    victim = subprocess.Popen(  # a real kedro run, held in its second training step
        [sys.executable, "-m", "tests.pipelines.signal_points", "step", "2"]
        + ["run", "--pipelines=training"],
        cwd=project_copy,
        env=env,
        pass_fds=(ready_w, go_r),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(ready_w)
    os.close(go_r)
    try:
        assert select.select([ready_r], [], [], 600)[0] and os.read(ready_r, 1) == b"r"
    finally:
        victim.kill()  # SIGKILL: nothing in the process runs after it
        victim.wait()
        os.close(ready_r)
        os.close(go_w)
    _, runs = _runs(project_copy)
    (left,) = [r for r in runs if r.info.status == "RUNNING"]  # nothing could end it
    assert left.data.tags["process_id"] == str(victim.pid)

    # train.resume=true with no checkpoint: refused before any MLflow run, not started over
    with pytest.raises(ValueError, match=r"train.resume=true but there is no checkpoint at .*"):
        run_kedro(project_copy, "training", {"train": {"resume": True}})
    _, after = _runs(project_copy)
    assert [r.info.run_id for r in after] == [r.info.run_id for r in runs]
    assert not any("resumed_from" in r.data.tags for r in after)

    assert cli_run(project_copy, "--pipelines=grouping") == 0  # the next run of the project
    client, runs = _runs(project_copy)
    dead = client.get_run(left.info.run_id)
    assert (dead.info.status, dead.data.tags["killed_by"]) == ("KILLED", InterruptedRunHook.LOST)
    assert [r.info.status for r in runs] == ["FINISHED", "KILLED", "FINISHED"]


def test_the_readme_resume_line_continues_a_sigterm_run_without_its_epochs(project_copy):
    """``kedro run --pipelines=training --params "train.resume=true"`` after a SIGTERM of a run
    started with ``train.epochs=2`` on its command line (the configuration says 20)."""
    _project_with(project_copy, {**TINY, "train": {"group_size": 32, "progress": "off"}})
    assert cli_run(project_copy, "--pipelines=ingestion,grouping", "--params=train.epochs=2") == 0
    with signal_at("step", 40, lambda: signal.raise_signal(signal.SIGTERM)) as reached:
        status = cli_run(project_copy, "--pipelines=training", "--params=train.epochs=2")
    assert reached and status == 128 + signal.SIGTERM
    _, (killed, *_) = _runs(project_copy)
    assert killed.info.status == "KILLED"

    # a resume the trainer refuses (another seed) does not claim to continue the run
    assert (
        cli_run(project_copy, "--pipelines=training", "--params=train.resume=true,train.seed=7")
        == 1
    )
    _, (refused, *_) = _runs(project_copy)
    assert refused.info.status == "FAILED" and "resumed_from" not in refused.data.tags
    # nor does one given other epochs than the checkpoint's: refused before a run opens
    assert (
        cli_run(project_copy, "--pipelines=training", "--params=train.resume=true,train.epochs=5")
        == 1
    )
    assert len(_runs(project_copy)[1]) == 3

    assert cli_run(project_copy, "--pipelines=training", "--params=train.resume=true") == 0
    client, (resumed, *_) = _runs(project_copy)
    assert resumed.info.status == "FINISHED"
    assert resumed.data.tags["resumed_from"] == killed.info.run_id
    assert resumed.data.params["train.epochs"] == "2"  # the checkpoint's, logged as used
    steps = [m.step for m in client.get_metric_history(resumed.info.run_id, "train_loss")]
    assert steps == [1, 2]


def test_a_run_s_process_is_gone_when_it_ended_or_its_id_was_reused():
    from ugvae_pipeline.hooks import process_state, process_tags

    mine = process_tags()
    assert process_state(mine) == "alive"
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    assert process_state({**mine, "process_id": str(ended.pid)}) == "gone"
    if mine["process_started"]:  # Linux: the start time tells a reused process id apart
        reused = {**mine, "process_started": str(int(mine["process_started"]) - 1)}
        assert process_state(reused) == "gone"
    assert process_state({**mine, "process_host": "elsewhere"}) == "unknown"
    if mine["process_pid_namespace"]:  # a container's process ids are not this one's
        other = {**mine, "process_pid_namespace": "1"}
        assert process_state({**other, "process_id": str(ended.pid)}) == "unknown"
    assert process_state({}) == "unknown"  # a run from before the process tags
