"""`kedro run --pipeline=train` through a real KedroSession, Data Catalog and MLflow store."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from kedro.framework.session import KedroSession
from mlflow import MlflowClient

from tests.conftest import kedro_cli, run_kedro
from ugvae_pipeline.models import UGVAE

TINY = {
    "train": {"epochs": 2, "group_size": 32, "progress": "off"},
    "model": {"dim_beta": 6},
    "groups": {"heldout": {"n_groups": 2, "group_size": 32, "seed": 0}},
    "figures": {"n_groups": 1, "n_images": 8, "seed": 0},
}


def _latest(folder) -> list:
    return sorted(folder.glob("*/*"))


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
    assert figures == {"reconstructions.png", "component_samples.png", "loss_curves.png"}
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
    }
    assert [a.path for a in client.list_artifacts(run.info.run_id, "history")] == [
        "history/training_history.csv"
    ]
    logged = client.search_logged_models([experiment.experiment_id])
    assert [m.name for m in logged] == ["group_codes"]  # the servable model
    assert logged[0].source_run_id == run.info.run_id
    (version,) = client.search_model_versions("name='ugvae'")  # registered under model.name
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


def test_pipelines_are_registered(project_copy):
    from kedro.framework.project import pipelines
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project_copy)
    names = set(pipelines)
    assert {"ingestion", "grouping", "training", "train", "__default__"} <= names
    train_nodes = {n.name for n in pipelines["train"].nodes}
    assert {"ingest_images", "build_training_groups", "train_model"} <= train_nodes
    assert KedroSession is not None
