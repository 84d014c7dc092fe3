"""Runs that combine artifacts of earlier runs, as a user types them (`kedro run` in its own
process, a real Data Catalog and MLflow SQLite store): artifacts made from other images are
never combined, and a run that re-scores a saved model records that model, not the
configuration."""

from __future__ import annotations

import json
import re
import shutil

import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.conftest import DEFAULT_TINY, _copy_project, cli_params, kedro_cli
from ugvae_pipeline.models.io import load_model

TINY = cli_params(DEFAULT_TINY)
MIXED = "data:\n  source: mixed\n  mixed:\n    sources: [uci_digits, mnist_embedded]\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A project after `kedro run --pipelines=train` with model.dim_beta=16, train.seed=7 (no
    evaluation); tests work on copies of its data."""
    root = tmp_path_factory.mktemp("trained")
    _copy_project(root)
    kedro_cli(root, "--pipelines=train", "--params", f"{TINY},model.dim_beta=16,train.seed=7")
    return root


def _copy(trained, root):
    """``trained``'s data in a fresh project copy with its own (empty) MLflow store."""
    _copy_project(root)
    shutil.copytree(trained / "data", root / "data")
    return root


def _fails(project, *args) -> str:
    """``kedro run *args`` that must fail; its stderr."""
    done = kedro_cli(project, *args, succeed=False)
    return " ".join(done.stderr.split())  # rich wraps long lines


def _versions(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def _cache_key(project) -> str:
    record = sorted((project / "data/02_intermediate/images.json").glob("*/images.json"))[-1]
    return json.loads(record.read_text())["cache_key"]


def _runs(project) -> list:
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ugvae_pipeline")
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


def test_after_another_ingestion_rescoring_and_training_stop_naming_what_to_rebuild(
    trained, tmp_path
):
    project = _copy(trained, tmp_path)
    old = _cache_key(project)
    (project / "conf" / "local" / "parameters.yml").write_text(MIXED)
    kedro_cli(project, "--pipelines=ingestion")
    new = _cache_key(project)
    assert new != old

    rescore = _fails(project, "--pipelines=extract,evaluate", "--params", TINY)
    assert "extract_codes would combine artifacts made from different images" in rescore
    assert f"trained_model: image cache {old} (mnist_embedded, 5000 images)" in rescore
    assert f"image cache {new} (uci_digits+mnist_embedded, 6797 images)" in rescore
    assert (
        "Rebuild trained_model from the current images: kedro run --pipelines=grouping,training,extract,evaluate"
        in rescore
    )
    assert f"image_cache/{old}/manifest.json (mnist_embedded)" in rescore  # or re-ingest those

    training = _fails(project, "--pipelines=training", "--params", TINY)
    assert "train_model would combine artifacts made from different images" in training
    assert re.search(rf"train_groups, heldout_groups[\w, ]*: image cache {old}", training)
    assert "kedro run --pipelines=grouping,training " in training

    # data: parameters of another source than the images: stopped before grouping them
    other = _fails(
        project, "--pipelines=extract,evaluate", "--params", f"{TINY},data.source=uci_digits"
    )
    assert "reads data.source=uci_digits (this run's data: parameters) but the images" in other

    for stderr in (rescore, training, other):
        assert "IndexError" not in stderr
    # nothing was scored or trained: the runs are FAILED and no score or model was written
    statuses = [(run.info.run_name, run.info.status) for run in _runs(project)]
    assert [status for _, status in statuses] == ["FINISHED", "FAILED", "FAILED", "FAILED"]
    assert not any(k.startswith("eval_") for run in _runs(project) for k in run.data.metrics)
    assert not (project / "data/08_reporting/evaluation_scores.csv").exists()
    assert len(_versions(project / "data/06_models/model.pt")) == 1


def test_a_rescore_records_the_model_it_scored_and_compare_files_it_there(trained, tmp_path):
    project = _copy(trained, tmp_path)
    (first,) = _versions(project / "data/06_models/model.pt")
    (trained_first,) = _runs(trained)
    # a second model, seed 8, on the same groups
    kedro_cli(project, "--pipelines=training", "--params", f"{TINY},model.dim_beta=16,train.seed=8")
    second = _versions(project / "data/06_models/model.pt")[-1]
    model = load_model(project / "data/06_models/model.pt" / second / "model.pt")
    (trained_second,) = _runs(project)
    assert model.provenance["training_run_id"] == trained_second.info.run_id
    assert model.provenance["seed"] == 8 and model.provenance["lineage"]["data"] == "mnist_embedded"
    assert trained_second.data.params["data.source"] == "mnist_embedded"  # read from the images

    kedro_cli(project, "--pipelines=extract,evaluate", "--params", TINY)  # the latest: seed 8
    kedro_cli(
        project,
        "--pipelines=extract,evaluate",
        "--params",
        TINY,
        "--load-versions",
        f"trained_model:{first}",
    )
    # its report shows its own training history (its version), not the latest model's
    report = sorted((project / "data/08_reporting/evaluation_report.html").glob("*/*.html"))[-1]
    seconds = [
        pd.read_csv(
            project / "data/08_reporting/training_history.csv" / v / "training_history.csv"
        )["seconds"].iloc[-1]
        for v in (first, second)
    ]
    assert f"<td>{seconds[0]:.4g}</td>" in report.read_text()
    assert f"<td>{seconds[1]:.4g}</td>" not in report.read_text()
    conflict = _fails(
        project, "--pipelines=extract,evaluate", "--params", f"{TINY},model.dim_beta=32"
    )
    assert "--params model.dim_beta=32 (the model has 16)" in conflict

    _, eighth, seventh, refused = _runs(project)
    key = _cache_key(project)
    for run, seed, version, trainer in (
        (eighth, "8", second, trained_second.info.run_id),
        (seventh, "7", first, trained_first.info.run_id),
    ):
        params, tags = run.data.params, run.data.tags
        assert run.info.status == "FINISHED"
        assert params["model.dim_beta"] == "16"  # the model's own, not conf's 32
        assert params["train.seed"] == seed
        assert params["data.source"] == "mnist_embedded"
        assert params["groups.training.strategy"] == "random"
        assert tags["model_version"] == version and tags["trained_in_run"] == trainer
        assert tags["image_cache"] == key
        assert run.info.run_name.startswith(f"ugvae-variant-mnist_embedded-random-s{seed}-")
        assert "eval_global_code_svm_linear" in run.data.metrics
    assert refused.info.status == "FAILED"

    kedro_cli(project, "--pipelines=compare")
    folder = project / "data/08_reporting/comparison"
    runs = pd.read_csv(sorted((folder / "runs.csv").glob("*/runs.csv"))[-1])
    assert sorted(runs["seed"]) == [7, 8]
    assert set(runs["dataset"]) == {"mnist_embedded"} and set(runs["model"]) == {"ugvae"}
    assert set(runs["trained_in_run"]) == {trained_first.info.run_id, trained_second.info.run_id}
    summary = pd.read_csv(sorted((folder / "summary.csv").glob("*/summary.csv"))[-1])
    assert len(summary) == 1 and summary.loc[0, "n_runs"] == 2
    assert summary.loc[0, "seeds"] == "7,8" and summary.loc[0, "variant"].startswith("variant(")
