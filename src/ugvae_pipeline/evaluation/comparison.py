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

from ugvae_pipeline.data.grouping.strategies import AUTO_STRATEGY  # noqa: E402
from ugvae_pipeline.models.registry import DEFAULT_MODEL  # noqa: E402
from ugvae_pipeline.runs import (  # noqa: E402
    PAPER_ARCHITECTURES,
    PAPER_OPTIONS,
    model_variant,
    training_groups_strategy,
)

log = logging.getLogger(__name__)

KEYS = ["model", "variant", "dataset", "training_groups", "evaluation_groups"]
RUN_COLUMNS = ["run_id", "start_time", *KEYS, "seed", "trained_in_run"]


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
    return (
        "+".join(map(str, parts)) if isinstance(parts, (list, tuple)) else f"mixed {mixed_sources}"
    )


def _evaluation_groups(runs: pd.DataFrame) -> list[str]:
    """``series``, ``series(all digits)`` for the harder series, ``series(in order)`` for
    series drawn as the official script draws them, `` [validation]`` (or `` [train]``) when
    the groups were not test groups, never mixed with test groups; ``auto`` as the run
    resolved it for its data source."""
    labels = []
    for strategy, source, digits, draw, split in zip(
        _param(runs, "groups.evaluation.strategy", "?"),
        _param(runs, "data.source", "?"),
        _param(runs, "groups.series.digits", "first_256"),
        _param(runs, "groups.series.draw", "with_replacement"),
        _param(runs, "groups.evaluation.split", "test"),
    ):
        if strategy == "auto":
            strategy = AUTO_STRATEGY.get(source, "auto")
        label = strategy
        if strategy == "series":
            kinds = [
                digits == "all_of_first_256_numbers" and "all digits",
                draw == "in_order" and "in order",
            ]
            kinds = [kind for kind in kinds if kind]
            label += f"({', '.join(kinds)})" if kinds else ""
        labels.append(label + ("" if split == "test" else f" [{split}]"))
    return labels


def _trained_in(runs: pd.DataFrame) -> pd.Series:
    """The run that trained each run's model: its tag ``trained_in_run`` (a re-scoring of a
    saved model), else the run itself."""
    if "tags.trained_in_run" not in runs:
        return runs["run_id"]
    return runs["tags.trained_in_run"].where(runs["tags.trained_in_run"].notna(), runs["run_id"])


def _variants(runs: pd.DataFrame, models: pd.Series) -> list[str]:
    options = {key: _param(runs, f"model.{key}", paper) for key, paper in PAPER_OPTIONS.items()}
    options["architecture"] = _param(runs, "model.architecture", PAPER_ARCHITECTURES[0])
    return [
        model_variant(model, {key: values.iloc[i] for key, values in options.items()})
        for i, model in enumerate(models)
    ]


def runs_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per finished run that evaluated a model: ``run_id``, ``start_time``, ``model``,
    ``variant`` (``paper`` or what differs from it, for UG-VAE), ``dataset``,
    ``training_groups`` (how the model's training groups were formed: ``labels`` for ML-VAE),
    ``evaluation_groups``, ``seed``, ``heldout_loss`` (last epoch's held-out negative ELBO per
    image), ``trained_in_run`` (the run that trained the model: the run itself, or for a
    re-scoring of a saved model its tag ``trained_in_run``) and every ``eval_*`` metric.

    A re-scoring (``kedro run --pipelines=extract,evaluate``) logs the scored model's own
    ``model.*``, ``train.seed``, ``groups.training.*`` and ``data.*`` parameters, so it is filed
    under that model, variant, dataset and seed like the run that trained it.

    Left out: failed runs, training-only runs, and all but one run of a repeated (model,
    variant, dataset, groups, seed), so a seed is never averaged twice: the latest run that
    trained, or else the latest re-scoring of a saved model (no held-out loss, e.g. the same
    models on other evaluation groups). An empty result is an error saying what to run."""
    evaluated = [c for c in runs.columns if c.startswith("metrics.eval_")]
    if "status" in runs:
        runs = runs[runs["status"] == "FINISHED"]
    if evaluated:
        runs = runs[runs[evaluated].notna().any(axis=1)]
    if "metrics.heldout_loss" not in runs:
        runs = runs.assign(**{"metrics.heldout_loss": np.nan})
    if runs.empty or not evaluated:
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
            "variant": _variants(runs, models),
            "dataset": [
                _dataset(source, mixed)
                for source, mixed in zip(
                    _param(runs, "data.source", "?"), _param(runs, "data.mixed.sources", "")
                )
            ],
            "training_groups": [
                training_groups_strategy(model, strategy)
                for model, strategy in zip(
                    models, _param(runs, "groups.training.strategy", "random")
                )
            ],
            "evaluation_groups": _evaluation_groups(runs),
            "seed": pd.to_numeric(_param(runs, "train.seed", "nan"), errors="coerce").astype(
                "Int64"
            ),
            "heldout_loss": runs["metrics.heldout_loss"],
            "trained_in_run": _trained_in(runs),
        }
    )
    for column in sorted(evaluated):
        table[column.removeprefix("metrics.")] = runs[column]
    # a run that trained (it has a held-out loss) wins over a later re-scoring of the same groups
    order = table.assign(_trained=table["heldout_loss"].notna()).sort_values(
        ["_trained", "start_time"]
    )
    latest = order.drop_duplicates([*KEYS, "seed"], keep="last").drop(columns="_trained")
    if len(latest) < len(table):
        log.warning(
            "compare: %d earlier run(s) of a repeated model/dataset/groups/seed left out",
            len(table) - len(latest),
        )
    return latest.sort_values([*KEYS, "seed"]).reset_index(drop=True)


# pooling baselines and the oracle, scored on the same groups as the global code
BASELINES = ("mean_image", "mean_local_code", "mean_mixture_probs", "oracle_label_histogram")
GLOBAL = "eval_global_code_"


def with_baselines(runs: pd.DataFrame, metrics: list[str]) -> list[str]:
    """``metrics`` and, after each global-code score, the same score of every baseline the runs have."""
    out = []
    for metric in metrics:
        out.append(metric)
        if metric.startswith(GLOBAL):
            score = metric.removeprefix(GLOBAL)
            out += [
                f"eval_{b}_{score}"
                for b in BASELINES
                if f"eval_{b}_{score}" in runs and runs[f"eval_{b}_{score}"].notna().any()
            ]
    return out


def summary_table(runs: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Per (model, dataset, training groups, evaluation groups): ``n_runs``, the seeds, and the
    mean and sample standard deviation of each of ``metrics`` (``<metric>_mean``, ``<metric>_std``).

    A metric no run has (e.g. the domain-alignment scores of series runs) is all NaN, with a
    warning naming the available ones (a typo shows there); none present at all is an error."""
    available = [c for c in runs.columns if c not in RUN_COLUMNS and runs[c].notna().any()]
    missing = [m for m in metrics if m not in available]
    if len(missing) == len(metrics):
        raise ValueError(
            f"none of compare.metrics {missing} is a metric of these runs; available: {available}"
        )
    if missing:
        log.warning("compare.metrics %s: no run has them (available: %s)", missing, available)
        runs = runs.assign(**{m: np.nan for m in missing})
    grouped = runs.groupby(KEYS, sort=True, dropna=False)
    summary = grouped.agg(
        n_runs=("run_id", "size"), seeds=("seed", lambda s: ",".join(map(str, sorted(s.dropna()))))
    )
    for metric in metrics:
        summary[f"{metric}_mean"] = grouped[metric].mean()
        summary[f"{metric}_std"] = grouped[metric].std(ddof=1)
    return summary.reset_index()


def _cell(mean: float, std: float, digits: int) -> str:
    if pd.isna(mean):
        return "–"
    return f"{mean:.{digits}f}" + (
        "" if pd.isna(std) else f" ± {std:.{digits}f}"
    )  # one run has no spread


def markdown_tables(summary: pd.DataFrame, metrics: list[str], digits: int = 3) -> str:
    """The summary as Markdown, one table per (dataset, evaluation groups), cells ``mean ± std``;
    metrics no run of a table has are left out of it. Under each table, the global-code scores
    of the pooling baselines and the oracle on the same groups, per model."""
    sections = []
    for (dataset, evaluation), part in summary.groupby(["dataset", "evaluation_groups"], sort=True):
        present = [
            m
            for m in metrics
            if f"{m}_mean" in part and part[f"{m}_mean"].notna().any() and not _is_baseline(m)
        ]
        header = ["model", "variant", "training groups", "runs", *present]
        lines = [
            f"**{dataset}**, evaluation groups: {evaluation}",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        for _, row in part.iterrows():
            cells = [
                row["model"],
                row["variant"],
                row["training_groups"],
                f"{row['n_runs']} (seeds {row['seeds']})",
            ]
            cells += [_cell(row[f"{m}_mean"], row[f"{m}_std"], digits) for m in present]
            lines.append("| " + " | ".join(map(str, cells)) + " |")
        sections.append("\n".join(lines))
        baseline_lines = _baseline_lines(part, metrics, digits)
        if baseline_lines:
            sections.append("\n".join(baseline_lines))
    return "\n\n".join(sections) + "\n"


def _is_baseline(metric: str) -> bool:
    return any(metric.startswith(f"eval_{b}_") for b in BASELINES)


def _baseline_lines(part: pd.DataFrame, metrics: list[str], digits: int) -> list[str]:
    """Per model, each baseline's score on the same groups, beside the global code's."""
    scores = [
        m.removeprefix(GLOBAL) for m in metrics if m.startswith(GLOBAL) and f"{m}_mean" in part
    ]
    rows = []
    for _, row in part.iterrows():
        for rep in ("global_code", *BASELINES):
            columns = [f"eval_{rep}_{s}" for s in scores]
            if not all(f"{c}_mean" in part for c in columns) or all(
                pd.isna(row[f"{c}_mean"]) for c in columns
            ):
                continue
            cells = [row["model"], row["variant"], rep] + [
                _cell(row[f"{c}_mean"], row[f"{c}_std"], digits) for c in columns
            ]
            rows.append("| " + " | ".join(map(str, cells)) + " |")
    if not rows:
        return []
    header = ["model", "variant", "representation", *scores]
    return [
        "Global code beside pooling baselines and the oracle on the same groups:",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *rows,
    ]


MARKERS = ("s", "^", "D", "*")  # mean image, mean local code, mean π, oracle


def comparison_figure(summary: pd.DataFrame, metrics: list[str]) -> Figure:
    """One panel per metric (four to a row): a bar per model (mean, error bar one std) for each
    dataset; a dataset without the metric has no bars. On a global-code score, black markers on
    each bar give the pooling baselines and the oracle on the same groups (mean over seeds)."""
    present = [
        m
        for m in metrics
        if f"{m}_mean" in summary and summary[f"{m}_mean"].notna().any() and not _is_baseline(m)
    ]
    labels = summary["dataset"] + "\n(" + summary["evaluation_groups"] + " groups)"
    cases = labels.drop_duplicates().tolist()
    summary = summary.assign(
        model=[
            model if variant == "-" else f"{model} {variant}"
            for model, variant in zip(summary["model"], summary["variant"])
        ]
    )
    models = sorted(summary["model"].unique())
    n_cols = min(4, len(present))
    n_rows = -(-len(present) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.8 * n_cols, 3.4 * n_rows), squeeze=False)
    for ax in axes.flat[len(present) :]:
        ax.set_visible(False)
    width = 0.8 / len(models)
    marked: set[str] = set()  # baselines already in the legend
    for ax, metric in zip(axes.flat, present):
        for i, model in enumerate(models):
            mine = summary[summary["model"] == model]
            x = [cases.index(label) + i * width for label in labels[mine.index]]
            ax.bar(
                x,
                mine[f"{metric}_mean"],
                width,
                yerr=mine[f"{metric}_std"].fillna(0),
                label=model,
                capsize=2,
            )
            if metric.startswith(GLOBAL):  # the baselines of the same groups, marked on each bar
                for baseline, marker in zip(BASELINES, MARKERS):
                    column = f"eval_{baseline}_{metric.removeprefix(GLOBAL)}_mean"
                    if column in mine and mine[column].notna().any():
                        ax.scatter(
                            x,
                            mine[column],
                            marker=marker,
                            color="black",
                            s=18,
                            zorder=3,
                            label=None if baseline in marked else f"{baseline} (same groups)",
                        )
                        marked.add(baseline)
        ax.set_xticks(
            [c + 0.4 - width / 2 for c in range(len(cases))],
            cases,
            fontsize=6,
            rotation=20,
            ha="right",
        )
        ax.set_title(metric, fontsize=9)
    legend: dict[str, object] = {}  # one legend for the figure: models (bars), baselines (markers)
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=4, fontsize=7)
    return fig
