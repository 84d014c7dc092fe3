"""Nodes of the compare pipeline: query the MLflow tracking store, tabulate, plot."""

from __future__ import annotations

import mlflow
import pandas as pd
from matplotlib.figure import Figure

from ugvae_pipeline.evaluation.comparison import (
    comparison_figure,
    markdown_tables,
    runs_table,
    summary_table,
    with_baselines,
)


def query_runs(compare_params: dict) -> pd.DataFrame:
    """Every run of ``compare.experiment`` matching ``compare.filter``, from the tracking store
    kedro-mlflow configured (``conf/*/mlflow.yml``)."""
    name = compare_params["experiment"]
    if mlflow.get_experiment_by_name(name) is None:
        existing = sorted(e.name for e in mlflow.search_experiments())
        raise ValueError(
            f"compare.experiment={name!r} is not an experiment of the tracking store "
            f"{mlflow.get_tracking_uri()}; experiments there: {existing}"
        )
    return mlflow.search_runs(
        experiment_names=[name],
        filter_string=compare_params.get("filter") or "",
        output_format="pandas",
    )


def compare_runs(
    runs: pd.DataFrame, compare_params: dict
) -> tuple[pd.DataFrame, pd.DataFrame, str, Figure]:
    """One row per evaluated run, the mean ± std summary over seeds, the summary as Markdown and
    as a figure, over ``compare.metrics`` and, beside each global-code score, the same score of
    the pooling baselines and the oracle on the same groups."""
    table = runs_table(runs)
    metrics = with_baselines(table, list(compare_params["metrics"]))
    summary = summary_table(table, metrics)
    return table, summary, markdown_tables(summary, metrics), comparison_figure(summary, metrics)
