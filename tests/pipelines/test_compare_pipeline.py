"""Baselines through the whole chain with model.name, then the compare pipeline over MLflow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.conftest import DEFAULT_TINY, cli_params, kedro_cli, run_kedro


def _latest(folder):
    return sorted(folder.glob("*/*"))[-1]


def test_baselines_train_and_evaluate_by_name_and_compare_side_by_side(project_copy):
    data = project_copy / "data"
    for model, seed in (("mlvae", 1), ("gmvae", 1), ("gmvae", 2)):
        params = {**DEFAULT_TINY, "model": {"name": model}, "mlflow_experiment": "study"}
        params["train"] = {**DEFAULT_TINY["train"], "seed": seed, "group_size": 32}
        # from the command line, as a user would: each run its own process and MLflow run
        kedro_cli(project_copy, "--params", cli_params(params))
        if model == "mlvae":  # ML-VAE trained on groups formed by labels, and every report says so
            labels = pd.read_parquet(_latest(data / "02_intermediate" / "image_metadata.parquet"))[
                "label"
            ].to_numpy()
            plan = np.load(_latest(data / "03_primary" / "train_groups.npy"))
            assert (labels[plan] == labels[plan][..., :1]).all()
            for report in ("training_report.html", "evaluation_report.html"):
                html = _latest(data / "08_reporting" / report).read_text()
                assert (
                    "mlvae, trained on groups formed by labels" in html
                    and "weak supervision" in html
                )

    run_kedro(project_copy, "compare", {"mlflow_experiment": "study"})
    runs = pd.read_csv(_latest(data / "08_reporting" / "comparison" / "runs.csv"))
    assert sorted(zip(runs["model"], runs["seed"], runs["training_groups"])) == [
        ("gmvae", 1, "random"),
        ("gmvae", 2, "random"),
        ("mlvae", 1, "labels"),
    ]
    # the table holds what MLflow holds for each run
    client = MlflowClient()
    for row in runs.itertuples():
        logged = client.get_run(row.run_id).data.metrics
        run = client.get_run(row.run_id)
        assert (run.data.tags["model"], run.data.tags["training_groups"]) == (
            row.model,
            row.training_groups,
        )
        assert row.heldout_loss == pytest.approx(logged["heldout_loss"], rel=1e-12)
        assert row.eval_global_code_svm_linear == pytest.approx(
            logged["eval_global_code_svm_linear"], rel=1e-12
        )
    summary = pd.read_csv(_latest(data / "08_reporting" / "comparison" / "summary.csv"))
    gmvae = summary[summary["model"] == "gmvae"].iloc[0]
    assert gmvae["n_runs"] == 2
    assert np.isclose(
        gmvae["heldout_loss_std"], runs.loc[runs["model"] == "gmvae", "heldout_loss"].std()
    )
    table = _latest(data / "08_reporting" / "comparison" / "summary.md").read_text()
    assert (
        "| gmvae | - | random | 2 (seeds 1,2) |" in table
        and "| mlvae | - | labels | 1 (seeds 1) |" in table
    )
    # the group codes stand beside the pooling baselines of the same groups, per model
    for rep in (
        "global_code",
        "mean_image",
        "mean_local_code",
        "mean_mixture_probs",
        "oracle_label_histogram",
    ):
        assert f"| gmvae | - | {rep} |" in table
    assert "| mlvae | - | mean_mixture_probs |" not in table  # ML-VAE has no mixture components
    assert _latest(data / "08_reporting" / "comparison" / "summary.png").stat().st_size > 10_000
    # the compare run itself is not tracked: the experiment holds the three runs only
    assert len(client.search_runs([client.get_experiment_by_name("study").experiment_id])) == 3
