"""What ``kedro run`` (and ``python -m ugvae_pipeline``) prints when a run cannot start: the
message alone, not a traceback around it; and how it names runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from tests.conftest import run_kedro
from tests.pipelines.signal_points import cli_run
from ugvae_pipeline.hooks import MissingInputError
from ugvae_pipeline.runs import run_name

MESSAGE = "train.epochs must be an integer >= 1, got -1"


def _cli(project: Path, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *command],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"},
    )


def test_a_parameter_error_prints_its_message_alone_the_traceback_in_the_log_file(project_copy):
    done = _cli(project_copy, "kedro", "run", "--pipelines=training", "--params=train.epochs=-1")
    assert done.returncode == 1
    assert f"Error: {MESSAGE}" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    after = (done.stdout + done.stderr).split(f"Error: {MESSAGE}", 1)[1]
    assert len(after.strip().splitlines()) <= 1  # at most the line saying where the traceback is
    log = (project_copy / "info.log").read_text()
    assert "Traceback (most recent call last)" in log and f"ValueError: {MESSAGE}" in log


def test_verbose_prints_the_traceback_also_under_python_m(project_copy):
    done = _cli(project_copy, "ugvae_pipeline", "--verbose", "--params=train.epochs=-1")
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert done.stderr.rstrip().splitlines()[-2] == f"Error: {MESSAGE}"


def test_extract_in_a_fresh_clone_says_to_train_first(project_copy, capfd):
    with pytest.raises(MissingInputError) as refused:
        run_kedro(project_copy, "extract", {})
    assert str(refused.value) == (
        "no saved image_metadata, images, trained_model yet: run "
        "`kedro run --pipelines=train` first, which makes them"
    )
    assert not (project_copy / "data").exists()  # before any node
    client = MlflowClient(f"sqlite:///{project_copy / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ugvae_pipeline")
    assert client.search_runs([experiment.experiment_id]) == []  # no MLflow run opened
    assert mlflow.active_run() is None

    assert cli_run(project_copy, "--pipelines=extract") == 1
    err = capfd.readouterr().err
    assert f"Error: {refused.value}" in err and "Did not find any versions" not in err


def test_the_run_name_does_not_depend_on_the_order_of_the_pipelines():
    args = ({"name": "gmvae"}, {}, {"source": "uci_digits"}, 1)
    names = {
        run_name(*args, pipelines)
        for pipelines in (["extract", "evaluate"], ["evaluate", "extract"])
    }
    assert names == {"gmvae-uci_digits-random-s1-evaluate+extract"}
