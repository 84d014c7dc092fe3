"""The comparison table from runs logged to a real MLflow (SQLite) tracking store."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from matplotlib.collections import PathCollection

from ugvae_pipeline.evaluation.comparison import (
    comparison_figure,
    markdown_tables,
    runs_table,
    summary_table,
    with_baselines,
)

METRICS = ["heldout_loss", "eval_global_code_svm_linear", "eval_domain_domain_accuracy"]


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("study")
    logged = [
        # model, seed, source, strategy, linear accuracy, held-out loss, domain accuracy
        ("ugvae", 1, "mnist_embedded", "random", 0.80, 150.0, None),
        (
            "ugvae",
            2,
            "mnist_embedded",
            "random",
            0.50,
            999.0,
            None,
        ),  # repeated later with 0.90, 152
        ("mlvae", 1, "mnist_embedded", "random", 0.60, 170.0, None),
        ("mlvae", 2, "mnist_embedded", "random", 0.70, 171.0, None),
        ("ugvae", 1, "mixed", "mixed_domains", 0.95, 160.0, 1.0),
    ]
    for model, seed, source, strategy, accuracy, loss, domain in logged:
        with mlflow.start_run(experiment_id=experiment):
            mlflow.log_params(
                {
                    "model.name": model,
                    "train.seed": seed,
                    "data.source": source,
                    "data.mixed.sources": "['mnist_embedded', 'uci_digits']",
                    "groups.training.strategy": strategy,
                    "groups.evaluation.strategy": "domain" if source == "mixed" else "series",
                }
            )
            for epoch, value in enumerate([loss + 10, loss]):  # the table takes the last epoch
                mlflow.log_metric("heldout_loss", value, step=epoch)
            mlflow.log_metric("eval_global_code_svm_linear", accuracy)
            if domain is not None:
                mlflow.log_metric("eval_domain_domain_accuracy", domain)
    with mlflow.start_run(experiment_id=experiment):  # training only: not evaluated, left out
        mlflow.log_params({"model.name": "gmvae", "train.seed": 1})
        mlflow.log_metric("heldout_loss", 1.0)
    with mlflow.start_run(experiment_id=experiment):  # strategy auto: what the source builds
        mlflow.log_params(
            {
                "model.name": "beta_vae",
                "train.seed": 1,
                "data.source": "uci_digits",
                "groups.evaluation.strategy": "auto",
            }
        )
        mlflow.log_metric("heldout_loss", 140.0)
        mlflow.log_metric("eval_global_code_svm_linear", 0.77)
    series_params = {
        "model.name": "ugvae",
        "train.seed": 1,
        "data.source": "mnist_embedded",
        "groups.training.strategy": "random",
        "groups.evaluation.strategy": "series",
    }
    with mlflow.start_run(
        experiment_id=experiment
    ):  # a later re-scoring of the same groups: the trained run wins
        mlflow.log_params(series_params)
        mlflow.log_metric("eval_global_code_svm_linear", 0.11)
    with mlflow.start_run(
        experiment_id=experiment
    ):  # a re-scoring on other groups (the harder series): kept
        mlflow.log_params({**series_params, "groups.series.digits": "all_of_first_256_numbers"})
        mlflow.log_metric("eval_global_code_svm_linear", 0.33)
    with mlflow.start_run(
        experiment_id=experiment
    ):  # the official script's protocol (training digits in order): a row of its own
        mlflow.log_params(
            {**series_params, "groups.evaluation.split": "train", "groups.series.draw": "in_order"}
        )
        mlflow.log_metric("eval_global_code_svm_linear", 0.44)
    with mlflow.start_run(
        experiment_id=experiment
    ):  # ugvae seed 2 again, later: replaces the first
        mlflow.log_params(
            {
                "model.name": "ugvae",
                "train.seed": 2,
                "data.source": "mnist_embedded",
                "groups.training.strategy": "random",
                "groups.evaluation.strategy": "series",
            }
        )
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
    # not the training-only or failed runs, the re-scoring of trained groups, nor the first of the repeated seed 2
    assert (
        len(table) == 8
        and "gmvae" not in set(table["model"])
        and 0.11 not in set(table["eval_global_code_svm_linear"])
    )
    assert "2 earlier run(s) of a repeated model/dataset/groups/seed left out" in caplog.text
    auto = table[table["model"] == "beta_vae"]
    assert list(auto["evaluation_groups"]) == ["series"]  # auto, resolved for its digit source
    official = table[table["evaluation_groups"] == "series(in order) [train]"]
    assert official["eval_global_code_svm_linear"].tolist() == [0.44]
    harder = table[table["evaluation_groups"] == "series(all digits)"]
    assert (
        harder["eval_global_code_svm_linear"].tolist() == [0.33]
        and harder["heldout_loss"].isna().all()
    )
    assert set(table.loc[table["model"] == "ugvae", "variant"]) == {
        "paper"
    }  # no option logged: the paper's
    assert set(table.loc[table["model"] == "mlvae", "variant"]) == {"-"}
    assert set(table.loc[table["model"] == "mlvae", "training_groups"]) == {
        "labels"
    }  # always label groups
    assert set(table.loc[table["model"] == "ugvae", "dataset"]) == {
        "mnist_embedded",
        "mnist_embedded+uci_digits",
    }
    series = table[table["evaluation_groups"] == "series"]
    assert series.loc[series["dataset"] == "mnist_embedded", "heldout_loss"].tolist() == [
        170.0,
        171.0,
        150.0,
        152.0,
    ]
    assert list(table.columns[:9]) == [
        "run_id",
        "start_time",
        "model",
        "variant",
        "dataset",
        "training_groups",
        "evaluation_groups",
        "seed",
        "heldout_loss",
    ]


def test_summary_is_mean_and_sample_std_over_seeds_and_renders_per_dataset(store, caplog):
    summary = summary_table(runs_table(store), METRICS + ["eval_not_a_metric"])
    assert "no run has them" in caplog.text and "eval_not_a_metric" in caplog.text
    ugvae = summary[
        (summary["model"] == "ugvae")
        & (summary["dataset"] == "mnist_embedded")
        & (summary["evaluation_groups"] == "series")
    ].iloc[0]
    assert ugvae["n_runs"] == 2 and ugvae["seeds"] == "1,2"
    assert ugvae["eval_global_code_svm_linear_mean"] == pytest.approx(0.85)
    assert ugvae["eval_global_code_svm_linear_std"] == pytest.approx(np.std([0.8, 0.9], ddof=1))
    text = markdown_tables(summary, METRICS)
    series = text.split("**mnist_embedded**, evaluation groups: series\n")[1].split("\n\n**")[0]
    domain = text.split("evaluation groups: domain\n")[1].split("\n\n**")[0]
    assert "| mlvae | - | labels | 2 (seeds 1,2) | 170.500 ± 0.707 | 0.650 ± 0.071 |" in series
    assert "eval_domain_domain_accuracy" not in series  # no series run has it
    assert (
        "| ugvae | paper | mixed_domains | 1 (seeds 1) | 160.000 | 0.950 | 1.000 |" in domain
    )  # one run: no ±
    fig = comparison_figure(summary, METRICS)
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == METRICS
    heights = sorted(round(p.get_height(), 3) for p in fig.axes[1].patches)
    assert heights == [0.33, 0.44, 0.65, 0.77, 0.85, 0.95]
    with pytest.raises(ValueError, match="none of compare.metrics"):
        summary_table(runs_table(store), ["eval_typo"])


def test_no_evaluated_run_says_what_to_run(store):
    with pytest.raises(
        ValueError, match=r"no finished run with evaluation metrics to compare: run the whole chain"
    ):
        runs_table(store[store["params.model.name"] == "gmvae"])
    series = runs_table(store[store["params.data.source"] == "mnist_embedded"])
    with pytest.raises(
        ValueError, match=r"none of compare.metrics \['eval_domain_domain_accuracy'\]"
    ):
        summary_table(series, ["eval_domain_domain_accuracy"])  # a column of NaN only: no values


def test_baselines_stand_beside_the_global_code_in_tables_and_figure(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("baselines")
    variant = {
        "model.global_factor_input": "probs",
        "model.global_factor_variance": "shared",
        "model.mixture_prior": "global",
        "model.architecture": "conv28",
    }
    for seed, (code, image, local, probs, oracle) in enumerate(
        [(0.9, 0.7, 0.6, 0.92, 1.0), (0.8, 0.7, 0.5, 0.88, 1.0)], 1
    ):
        with mlflow.start_run(experiment_id=experiment):
            mlflow.log_params(
                {
                    "model.name": "ugvae",
                    "train.seed": seed,
                    "data.source": "mnist_embedded",
                    "groups.evaluation.strategy": "series",
                    **variant,
                }
            )
            mlflow.log_metric("heldout_loss", 140.0)
            for rep, value in [
                ("global_code", code),
                ("mean_image", image),
                ("mean_local_code", local),
                ("mean_mixture_probs", probs),
                ("oracle_label_histogram", oracle),
            ]:
                mlflow.log_metric(f"eval_{rep}_svm_linear", value)
    runs = runs_table(mlflow.search_runs(experiment_names=["baselines"]))
    mlflow.set_tracking_uri(None)
    assert set(runs["variant"]) == {
        "variant(factors=probs, variance=shared, p(d|β)=global, conv28)"
    }
    metrics = with_baselines(runs, ["heldout_loss", "eval_global_code_svm_linear"])
    assert metrics == [
        "heldout_loss",
        "eval_global_code_svm_linear",
        "eval_mean_image_svm_linear",
        "eval_mean_local_code_svm_linear",
        "eval_mean_mixture_probs_svm_linear",
        "eval_oracle_label_histogram_svm_linear",
    ]
    summary = summary_table(runs, metrics)
    text = markdown_tables(summary, metrics)
    assert (
        "| ugvae | variant(factors=probs, variance=shared, p(d|β)=global, conv28) | mean_mixture_probs | 0.900 ± 0.028 |"
        in text
    )
    assert (
        "| ugvae | variant(factors=probs, variance=shared, p(d|β)=global, conv28) | global_code | 0.850 ± 0.071 |"
        in text
    )
    fig = comparison_figure(summary, metrics)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["heldout_loss", "eval_global_code_svm_linear"]
    scatters = [c for c in panels[1].collections if isinstance(c, PathCollection)]
    marked = sorted(round(float(y), 3) for c in scatters for y in c.get_offsets()[:, 1])
    assert marked == [0.55, 0.7, 0.9, 1.0]  # each baseline's mean over seeds, on the model's bar
