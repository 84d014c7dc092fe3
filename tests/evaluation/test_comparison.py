"""The comparison table from runs logged to a real MLflow (SQLite) tracking store."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest

from ugvae_pipeline.evaluation.comparison import comparison_figure, markdown_tables, runs_table, summary_table

METRICS = ["heldout_loss", "eval_global_code_svm_linear", "eval_domain_domain_accuracy"]


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("study")
    logged = [
        # model, seed, source, strategy, linear accuracy, held-out loss, domain accuracy
        ("ugvae", 1, "mnist_embedded", "random", 0.80, 150.0, None),
        ("ugvae", 2, "mnist_embedded", "random", 0.50, 999.0, None),  # repeated later with 0.90, 152
        ("mlvae", 1, "mnist_embedded", "random", 0.60, 170.0, None),
        ("mlvae", 2, "mnist_embedded", "random", 0.70, 171.0, None),
        ("ugvae", 1, "mixed", "mixed_domains", 0.95, 160.0, 1.0),
    ]
    for model, seed, source, strategy, accuracy, loss, domain in logged:
        with mlflow.start_run(experiment_id=experiment):
            mlflow.log_params({
                "model.name": model, "train.seed": seed, "data.source": source,
                "data.mixed.sources": "['mnist_embedded', 'uci_digits']", "groups.training.strategy": strategy,
                "groups.evaluation.strategy": "domain" if source == "mixed" else "series",
            })
            for epoch, value in enumerate([loss + 10, loss]):  # the table takes the last epoch
                mlflow.log_metric("heldout_loss", value, step=epoch)
            mlflow.log_metric("eval_global_code_svm_linear", accuracy)
            if domain is not None:
                mlflow.log_metric("eval_domain_domain_accuracy", domain)
    with mlflow.start_run(experiment_id=experiment):  # training only: not evaluated, left out
        mlflow.log_params({"model.name": "gmvae", "train.seed": 1})
        mlflow.log_metric("heldout_loss", 1.0)
    with mlflow.start_run(experiment_id=experiment):  # a re-scoring (no held-out loss): left out
        mlflow.log_params({"model.name": "ugvae"})
        mlflow.log_metric("eval_global_code_svm_linear", 0.11)
    with mlflow.start_run(experiment_id=experiment):  # ugvae seed 2 again, later: replaces the first
        mlflow.log_params({"model.name": "ugvae", "train.seed": 2, "data.source": "mnist_embedded",
                           "groups.training.strategy": "random", "groups.evaluation.strategy": "series"})
        mlflow.log_metric("heldout_loss", 152.0)
        mlflow.log_metric("eval_global_code_svm_linear", 0.90)
    with mlflow.start_run(experiment_id=experiment):  # failed: left out
        mlflow.log_params({"model.name": "gmvae", "train.seed": 2})
        mlflow.log_metric("eval_global_code_svm_linear", 0.99)
        mlflow.end_run(status="FAILED")
    yield mlflow.search_runs(experiment_names=["study"])
    mlflow.set_tracking_uri(None)


def test_runs_table_has_one_row_per_evaluated_run_with_effective_training_groups(store, caplog):
    table = runs_table(store)
    # not the training-only, failed or re-scoring runs, nor the first of the repeated ugvae seed 2
    assert len(table) == 5 and "gmvae" not in set(table["model"]) and 0.11 not in set(table["eval_global_code_svm_linear"])
    assert "1 earlier run(s) of a repeated model/dataset/groups/seed left out" in caplog.text
    assert set(table.loc[table["model"] == "mlvae", "training_groups"]) == {"labels"}  # always label groups
    assert set(table.loc[table["model"] == "ugvae", "dataset"]) == {"mnist_embedded", "mnist_embedded+uci_digits"}
    assert table.loc[table["dataset"] == "mnist_embedded", "heldout_loss"].tolist() == [170.0, 171.0, 150.0, 152.0]
    assert list(table.columns[:8]) == [
        "run_id", "start_time", "model", "dataset", "training_groups", "evaluation_groups", "seed", "heldout_loss"
    ]


def test_summary_is_mean_and_sample_std_over_seeds_and_renders_per_dataset(store, caplog):
    summary = summary_table(runs_table(store), METRICS + ["eval_not_a_metric"])
    assert "no run has them" in caplog.text and "eval_not_a_metric" in caplog.text
    ugvae = summary[(summary["model"] == "ugvae") & (summary["dataset"] == "mnist_embedded")].iloc[0]
    assert ugvae["n_runs"] == 2 and ugvae["seeds"] == "1,2"
    assert ugvae["eval_global_code_svm_linear_mean"] == pytest.approx(0.85)
    assert ugvae["eval_global_code_svm_linear_std"] == pytest.approx(np.std([0.8, 0.9], ddof=1))
    text = markdown_tables(summary, METRICS)
    series, domain = text.split("\n\n**")
    assert "| mlvae | labels | 2 (seeds 1,2) | 170.500 ± 0.707 | 0.650 ± 0.071 |" in series
    assert "eval_domain_domain_accuracy" not in series  # no series run has it
    assert "| ugvae | mixed_domains | 1 (seeds 1) | 160.000 | 0.950 | 1.000 |" in domain  # one run: no ±
    fig = comparison_figure(summary, METRICS)
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == METRICS
    heights = sorted(round(p.get_height(), 3) for p in fig.axes[1].patches)
    assert heights == [0.65, 0.85, 0.95]
    with pytest.raises(ValueError, match="none of compare.metrics"):
        summary_table(runs_table(store), ["eval_typo"])


def test_no_evaluated_run_says_what_to_run(store):
    with pytest.raises(ValueError, match=r"no finished run with evaluation metrics to compare: run the whole chain"):
        runs_table(store[store["params.model.name"] == "gmvae"])
    series = runs_table(store[store["params.data.source"] == "mnist_embedded"])
    with pytest.raises(ValueError, match=r"none of compare.metrics \['eval_domain_domain_accuracy'\]"):
        summary_table(series, ["eval_domain_domain_accuracy"])  # a column of NaN only: no values
