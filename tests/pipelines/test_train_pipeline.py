"""`kedro run --pipeline=train` through a real KedroSession, Data Catalog and MLflow store."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest
import torch
from mlflow import MlflowClient

from tests.conftest import kedro_cli, run_kedro
from ugvae_pipeline.models import UGVAE
from ugvae_pipeline.pipeline_registry import register_pipelines

TINY = {
    "train": {"epochs": 2, "group_size": 32, "progress": "off"},
    "model": {"dim_beta": 6},
    "groups": {"heldout": {"n_groups": 2, "group_size": 32, "seed": 0}},
    "figures": {"n_groups": 1, "n_images": 8, "seed": 0},
}


def _latest(folder) -> list:
    """The versions of a versioned file, oldest first (not the records saved beside them)."""
    return sorted(folder.glob(f"*/{folder.name}"))


def test_train_pipeline_writes_versioned_artifacts_and_tracks_mlflow(project_copy):
    run_kedro(project_copy, "train", TINY)
    data = project_copy / "data"

    # every artifact is a timestamped version in the catalog's folders
    model_files = _latest(data / "06_models" / "model.pt")
    assert len(model_files) == 1
    from ugvae_pipeline.models import load_model

    model = load_model(model_files[0])
    assert isinstance(model, UGVAE) and not model.training
    assert model.config.dim_beta == 6
    enc = model.encode(torch.rand(1, 4, 1, 28, 28))
    assert enc.global_mean.shape == (1, 6)

    history = pd.read_csv(_latest(data / "08_reporting" / "training_history.csv")[0])
    assert list(history["epoch"]) == [1, 2]
    for split in ("train", "heldout"):  # history columns: the held-out loss is on validation groups
        for term in ("loss", "reconstruction", "local_kl", "mixture_kl", "global_kl"):
            assert history[f"{split}_{term}"].notna().all()
    figures = {p.parent.parent.name for p in (data / "08_reporting" / "figures").glob("*/*/*.png")}
    assert figures == {
        "reconstructions.png",
        "component_samples.png",
        "loss_curves.png",
        "validation_scores.png",
    }
    for png in (data / "08_reporting" / "figures").glob("*/*/*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the MLflow run: flattened parameters, per-epoch metrics with steps, artifacts, model
    client = MlflowClient(f"sqlite:///{project_copy / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ugvae_pipeline")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "ugvae-variant-mnist_embedded-random-s1-train"  # reads at a glance
    params = run.data.params
    assert params["train.epochs"] == "2"
    assert params["model.dim_beta"] == "6"
    assert params["model.architecture"] == "conv28"  # the default of conf/base
    history_steps = client.get_metric_history(run.info.run_id, "heldout_loss")
    assert [m.step for m in history_steps] == [1, 2]
    assert [m.value for m in history_steps] == pytest.approx(list(history["heldout_loss"]))
    for name in ("train_loss", "train_global_kl", "heldout_reconstruction"):
        assert name in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
    assert artifacts == {
        "figures/reconstructions.png",
        "figures/component_samples.png",
        "figures/loss_curves.png",
        "figures/validation_scores.png",
    }
    assert [a.path for a in client.list_artifacts(run.info.run_id, "history")] == [
        "history/training_history.csv"
    ]
    logged = client.search_logged_models([experiment.experiment_id])
    assert [m.name for m in logged] == ["group_codes"]  # the servable model
    assert logged[0].source_run_id == run.info.run_id
    # registered under a name that says model, data and input shape
    (version,) = client.search_model_versions("name='ugvae-variant-mnist_embedded-1x28x28'")
    assert version.run_id == run.info.run_id and version.tags["model.dim_beta"] == "6"

    # a second run from the command line, with other parameters, lands beside the first
    # and overwrites nothing
    cli_params = (
        "train.epochs=2,train.group_size=32,model.dim_beta=4,groups.heldout.n_groups=2,"
        "groups.heldout.group_size=32,figures.n_groups=1"
    )
    kedro_cli(project_copy, "--pipeline=train", "--params", cli_params)
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.params["model.dim_beta"] for r in runs) == ["4", "6"]
    assert len(_latest(data / "06_models" / "model.pt")) == 2


def test_bad_parameters_fail_before_any_node_runs(project_copy):
    with pytest.raises(ValueError, match=r"model.architecture='resnet' is unknown"):
        run_kedro(project_copy, "train", {**TINY, "model": {"architecture": "resnet"}})
    assert not (project_copy / "data" / "02_intermediate").exists()
    with pytest.raises(ValueError, match=r"train.epochs must be an integer >= 1"):
        run_kedro(project_copy, "train", {**TINY, "train": {**TINY["train"], "epochs": 0}})


def _runs(project) -> list:
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ugvae_pipeline")
    return client.search_runs([experiment.experiment_id]) if experiment else []


def test_a_typo_in_a_group_the_pipeline_does_not_read_is_refused_before_any_run(project_copy):
    """``train`` reads no ``evaluate:`` parameter, yet ``evaluate.sead`` is refused before any
    node and before any MLflow run opens; so is a misspelt group, which nothing would read."""
    with pytest.raises(ValueError, match=r"unknown parameter evaluate.sead; valid names there"):
        run_kedro(project_copy, "train", {**TINY, "evaluate": {"sead": 3}})
    done = subprocess.run(
        [sys.executable, "-m", "kedro", "run", "--pipelines=train", "--params", "trian.epochs=1"],
        cwd=project_copy,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"},
    )
    assert done.returncode != 0
    assert "unknown parameter group(s) 'trian' (did you mean 'train'?)" in " ".join(
        done.stderr.split()
    )
    assert not (project_copy / "data").exists()  # no node ran
    assert _runs(project_copy) == []  # no MLflow run was opened


def test_pipelines_are_registered():
    pipelines = register_pipelines()
    assert {"ingestion", "grouping", "training", "train", "__default__"} <= set(pipelines)
    train_nodes = {n.name for n in pipelines["train"].nodes}
    assert {"ingest_images", "build_training_groups", "build_heldout_groups", "train_model"} <= (
        train_nodes
    )
    # the evaluation groups belong to the stages that read them: extract builds them
    assert "build_evaluation_groups" not in train_nodes
    assert "build_evaluation_groups" not in {n.name for n in pipelines["grouping"].nodes}
    extract_nodes = pipelines["extract"].nodes
    assert [n.name for n in extract_nodes] == ["build_evaluation_groups", "extract_codes"]
    assert all("extract" in n.tags for n in extract_nodes)
    assert pipelines["__default__"].only_nodes("build_evaluation_groups").nodes
