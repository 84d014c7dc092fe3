"""Side-by-side comparison of tracked runs: one row per run, then mean ± std over seeds.

Works on the table ``mlflow.search_runs`` returns (columns ``run_id``, ``status``,
``start_time``, ``params.<name>``, ``metrics.<name>``); the compare pipeline does the query,
so this module knows nothing of MLflow or Kedro.
"""

from __future__ import annotations

import ast
import logging

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ugvae_pipeline.models.registry import DEFAULT_MODEL, training_groups_strategy  # noqa: E402

log = logging.getLogger(__name__)

KEYS = ["model", "dataset", "training_groups", "evaluation_groups"]
RUN_COLUMNS = ["run_id", "start_time", *KEYS, "seed"]


def _param(runs: pd.DataFrame, name: str, default: str) -> pd.Series:
    column = f"params.{name}"
    if column not in runs:
        return pd.Series(default, index=runs.index)
    return runs[column].fillna(default).astype(str)


def _dataset(source: str, mixed_sources: str) -> str:
    if source != "mixed":
        return source
    try:
        parts = ast.literal_eval(mixed_sources)
    except (ValueError, SyntaxError):
        return f"mixed {mixed_sources}"
    return "+".join(map(str, parts)) if isinstance(parts, (list, tuple)) else f"mixed {mixed_sources}"


def runs_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per finished run that trained and evaluated a model (``kedro run``): ``run_id``,
    ``start_time``, ``model``, ``dataset``, ``training_groups`` (how the model's training groups
    were formed: ``labels`` for ML-VAE), ``evaluation_groups``, ``seed``, ``heldout_loss`` (last
    epoch's held-out negative ELBO per image) and every ``eval_*`` metric.

    Left out: failed runs, training-only runs, re-scorings of a saved model (no held-out loss),
    and all but the latest run of a repeated (model, dataset, groups, seed), so a seed is never
    averaged twice. An empty result is an error saying what to run."""
    evaluated = [c for c in runs.columns if c.startswith("metrics.eval_")]
    if "status" in runs:
        runs = runs[runs["status"] == "FINISHED"]
    if evaluated and "metrics.heldout_loss" in runs:
        runs = runs[runs[evaluated].notna().any(axis=1) & runs["metrics.heldout_loss"].notna()]
    if runs.empty or not evaluated or "metrics.heldout_loss" not in runs:
        raise ValueError(
            "no finished run with evaluation metrics to compare: run the whole chain first "
            "(`kedro run`, or `make results`), or widen compare.filter / check compare.experiment"
        )
    models = _param(runs, "model.name", DEFAULT_MODEL)
    table = pd.DataFrame(
        {
            "run_id": runs["run_id"],
            "start_time": runs["start_time"] if "start_time" in runs else pd.NaT,
            "model": models,
            "dataset": [
                _dataset(source, mixed)
                for source, mixed in zip(_param(runs, "data.source", "?"), _param(runs, "data.mixed.sources", ""))
            ],
            "training_groups": [
                training_groups_strategy(model, strategy)
                for model, strategy in zip(models, _param(runs, "groups.training.strategy", "random"))
            ],
            "evaluation_groups": _param(runs, "groups.evaluation.strategy", "?"),
            "seed": pd.to_numeric(_param(runs, "train.seed", "nan"), errors="coerce").astype("Int64"),
            "heldout_loss": runs["metrics.heldout_loss"],
        }
    )
    for column in sorted(evaluated):
        table[column.removeprefix("metrics.")] = runs[column]
    latest = table.sort_values("start_time").drop_duplicates([*KEYS, "seed"], keep="last")
    if len(latest) < len(table):
        log.warning("compare: %d earlier run(s) of a repeated model/dataset/groups/seed left out", len(table) - len(latest))
    return latest.sort_values([*KEYS, "seed"]).reset_index(drop=True)


def summary_table(runs: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Per (model, dataset, training groups, evaluation groups): ``n_runs``, the seeds, and the
    mean and sample standard deviation of each of ``metrics`` (``<metric>_mean``, ``<metric>_std``).

    A metric no run has (e.g. the domain-alignment scores of series runs) is all NaN, with a
    warning naming the available ones (a typo shows there); none present at all is an error."""
    available = [c for c in runs.columns if c not in RUN_COLUMNS and runs[c].notna().any()]
    missing = [m for m in metrics if m not in available]
    if len(missing) == len(metrics):
        raise ValueError(f"none of compare.metrics {missing} is a metric of these runs; available: {available}")
    if missing:
        log.warning("compare.metrics %s: no run has them (available: %s)", missing, available)
        runs = runs.assign(**{m: np.nan for m in missing})
    grouped = runs.groupby(KEYS, sort=True, dropna=False)
    summary = grouped.agg(n_runs=("run_id", "size"), seeds=("seed", lambda s: ",".join(map(str, sorted(s.dropna())))))
    for metric in metrics:
        summary[f"{metric}_mean"] = grouped[metric].mean()
        summary[f"{metric}_std"] = grouped[metric].std(ddof=1)
    return summary.reset_index()


def markdown_tables(summary: pd.DataFrame, metrics: list[str], digits: int = 3) -> str:
    """The summary as Markdown, one table per (dataset, evaluation groups), cells ``mean ± std``;
    metrics no run of a table has are left out of it."""
    sections = []
    for (dataset, evaluation), part in summary.groupby(["dataset", "evaluation_groups"], sort=True):
        present = [m for m in metrics if part[f"{m}_mean"].notna().any()]
        header = ["model", "training groups", "runs", *present]
        lines = [
            f"**{dataset}**, evaluation groups: {evaluation}",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        for _, row in part.iterrows():
            cells = [row["model"], row["training_groups"], f"{row['n_runs']} (seeds {row['seeds']})"]
            for m in present:
                mean, std = row[f"{m}_mean"], row[f"{m}_std"]
                if pd.isna(mean):
                    cells.append("–")
                else:  # one run has no spread
                    cells.append(f"{mean:.{digits}f}" + ("" if pd.isna(std) else f" ± {std:.{digits}f}"))
            lines.append("| " + " | ".join(map(str, cells)) + " |")
        sections.append("\n".join(lines))
    return "\n\n".join(sections) + "\n"


def comparison_figure(summary: pd.DataFrame, metrics: list[str]) -> Figure:
    """One panel per metric (four to a row): a bar per model (mean, error bar one std) for each
    dataset; a dataset without the metric has no bars."""
    present = [m for m in metrics if summary[f"{m}_mean"].notna().any()]
    labels = summary["dataset"] + "\n(" + summary["evaluation_groups"] + " groups)"
    cases = labels.drop_duplicates().tolist()
    models = sorted(summary["model"].unique())
    n_cols = min(4, len(present))
    n_rows = -(-len(present) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.8 * n_cols, 3.4 * n_rows), squeeze=False)
    for ax in axes.flat[len(present):]:
        ax.set_visible(False)
    width = 0.8 / len(models)
    for ax, metric in zip(axes.flat, present):
        for i, model in enumerate(models):
            mine = summary[summary["model"] == model]
            x = [cases.index(label) + i * width for label in labels[mine.index]]
            ax.bar(x, mine[f"{metric}_mean"], width, yerr=mine[f"{metric}_std"].fillna(0), label=model, capsize=2)
        ax.set_xticks([c + 0.4 - width / 2 for c in range(len(cases))], cases, fontsize=7)
        ax.set_title(metric, fontsize=9)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig
