"""torchrun as a first-class engine: the real ``torchrun`` CLI starts two Gloo processes on the
project's catalog; rank 0's run is tracked as ``kedro run`` tracks one, a SIGTERM pre-empts it
cleanly and ``train.resume=true`` continues it to the weights of an uninterrupted launch."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.conftest import cli_params, kedro_cli
from tests.equivalence import assert_same_adam_training, assert_same_weights
from ugvae_pipeline.models.io import load_model
from ugvae_pipeline.training import checkpoint as ckpt

TORCHRUN = Path(sys.executable).with_name("torchrun")
SRC = Path(__file__).resolve().parents[2] / "src"
PARAMS = {
    # 1,797 digits, 1,259 for training: 34 groups of 36 per epoch, 17 steps of 2 x 1 group
    # (an even count: one process with 2 groups per step then trains on the very same groups)
    "data": {"source": "uci_digits"},
    "train": {
        "epochs": 2,
        "group_size": 36,
        "progress": "log",
        "log_every": 4,
        "learning_rate": 5e-3,
    },
    "model": {"architecture": "mlp28", "dim_beta": 4},  # no BatchNorm: exact data parallelism
    "groups": {"heldout": {"n_groups": 2, "group_size": 32}},
    "figures": {"n_groups": 1, "n_images": 8},
}


def _torchrun(project: Path, params: str) -> subprocess.Popen:
    """``torchrun --standalone --nproc_per_node=2 -m ...torchrun --params PARAMS``, as typed."""
    return subprocess.Popen(
        [str(TORCHRUN), "--standalone", "--nproc_per_node=2"]
        + ["-m", "ugvae_pipeline.pipelines.training.torchrun", "--params", params],
        cwd=project,
        env={
            **os.environ,
            "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "OMP_NUM_THREADS": "1",
            "KEDRO_DISABLE_TELEMETRY": "true",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(process: subprocess.Popen) -> str:
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 0, out[-4000:]
    return out


def _models(project: Path) -> list[dict]:
    paths = sorted((project / "data" / "06_models" / "model.pt").glob("*/model.pt"))
    return [load_model(path.read_bytes()).state_dict() for path in paths]


@pytest.mark.slow
def test_torchrun_trains_tracks_preempts_and_resumes_like_kedro_run(project_copy):
    params = cli_params(PARAMS)
    kedro_cli(project_copy, "--pipelines=ingestion,grouping", "--params", params)
    client = MlflowClient(f"sqlite:///{project_copy / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ugvae_pipeline")

    # 1. two processes, `--params` as kedro run takes them
    _finish(_torchrun(project_copy, params))
    (run,) = client.search_runs(
        [experiment.experiment_id], "tags.`mlflow.runName` LIKE '%-training'"
    )
    assert run.info.status == "FINISHED" and run.data.params["train.epochs"] == "2"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "heldout_loss")] == [1, 2]
    logged = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"history", "figures", "report"} <= logged
    history = sorted((project_copy / "data" / "08_reporting" / "training_history.csv").glob("*/*"))
    assert list(pd.read_csv(history[-1])["epoch"]) == [1, 2]
    # registered as kedro run does it: a version of this run, under the model's name
    (version,) = client.search_model_versions(f"run_id='{run.info.run_id}'")
    assert version.name == "ugvae-variant-uci_digits-1x28x28"

    # ... makes the update of one process taking both processes' groups in each step
    kedro_cli(
        project_copy,
        "--pipelines=training",
        "--params",
        cli_params({**PARAMS, "train": {**PARAMS["train"], "groups_per_step": 2}}),
    )
    parallel, single = _models(project_copy)
    # the gradients differ only by summation order (exactly so: test_distributed.py compares
    # them); after 34 steps of Adam at lr 5e-3, rounding can have turned the steps of a few
    # weights whose gradient is near zero, never of most: within Adam's bounds for any rounding
    # (tests/equivalence.py), while processes that did not share gradients are far outside
    assert_same_adam_training(parallel, single, steps=34, lr=PARAMS["train"]["learning_rate"])

    # 2. SIGTERM to torchrun mid-epoch: it passes it on, each process finishes its step, rank
    #    0 checkpoints there, the run ends KILLED and torchrun exits non-zero
    preempted = cli_params({**PARAMS, "train": {**PARAMS["train"], "checkpoint_dir": "data/ck"}})
    victim = _torchrun(project_copy, preempted)
    output, deadline = [], time.monotonic() + 300
    for line in victim.stdout:
        output.append(line)
        if (step := re.search(r"train: (\d+)/34 steps", line)) and int(step[1]) >= 8:
            victim.send_signal(signal.SIGTERM)
            break
        assert time.monotonic() < deadline, "".join(output[-50:])
    output.append(victim.communicate(timeout=120)[0])
    assert victim.returncode != 0
    text = "".join(output)
    assert "SIGTERM: training stopped after epoch 1, step" in text, text[-4000:]
    state = ckpt.load_checkpoint(project_copy / "data" / "ck" / ckpt.FILENAME)
    assert state["epoch"] == 0 and 8 <= state["step"] < 17
    (killed,) = client.search_runs([experiment.experiment_id], "attributes.status = 'KILLED'")
    assert killed.data.tags["killed_by"] == "SIGTERM"

    # 3. resumed under torchrun: the weights of the uninterrupted launch, the run it continues
    resumed_params = {**PARAMS, "train": {**PARAMS["train"], "checkpoint_dir": "data/ck"}}
    resumed_params["train"]["resume"] = True
    _finish(_torchrun(project_copy, cli_params(resumed_params)))
    *_, resumed = _models(project_copy)
    assert_same_weights(resumed, parallel)  # bit for bit (tests/equivalence.py)
    (latest, *_) = client.search_runs(
        [experiment.experiment_id], order_by=["attributes.start_time DESC"]
    )
    assert latest.info.status == "FINISHED"
    assert latest.data.tags["resumed_from"] == killed.info.run_id
    assert [m.step for m in client.get_metric_history(latest.info.run_id, "train_loss")] == [1, 2]
    np.testing.assert_array_equal(  # the resumed run's history equals the uninterrupted one's
        pd.read_csv(sorted(history[0].parent.parent.glob("*/*"))[-1])["heldout_loss"],
        pd.read_csv(history[-1])["heldout_loss"],
    )


def test_torchrun_refuses_a_bad_parameter_on_every_process_before_joining(project_copy):
    process = _torchrun(project_copy, "train.epochs=0,model.dim_beta=4")
    out, _ = process.communicate(timeout=300)
    assert process.returncode != 0
    # each process stops with the message kedro run gives, none waits for the others
    assert out.count("train.epochs must be an integer >= 1, got 0") >= 2, out[-3000:]
    assert "training on" not in out and "Running node" not in out
