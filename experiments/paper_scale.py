"""The paper's experiment at the paper's scale: full MNIST, the official number of steps.

    make mnist                                  # once: the 70,000 digits, offline
    python experiments/paper_scale.py           # both models, seeds 1-3, every selection rule
    python experiments/paper_scale.py --summary # only the tables, from the runs already tracked

For each model and seed it runs the whole chain as a user would, one run after another:

- ``paper``: ``kedro run --env paper_scale`` (the paper's UG-VAE, conf/official's options, on
  54,000 training digits for 9 epochs, 3,789 steps);
- ``variant``: ``kedro run`` with the project's variant (conf/base) at the same scale
  (``data.source=mnist`` and the train keys conf/paper_scale changes);

each once per ``train.select_epoch`` rule (``last``, ``heldout_loss``, ``validation_svm_linear``:
the same training, another epoch saved), all scored on the official series of **test** digits.
After each ``last`` run, the model it trained is scored again, without retraining, with the
official script's protocol: series of **training** digits, each class's images taken in order
without repeats (``groups.evaluation.split=train,groups.series.draw=in_order``).

Everything is tracked in the MLflow experiment ``ugvae_paper_scale``; a run already there is not
redone, so an interrupted study continues. Last, the tables (test scores with every pooling
baseline, the validation trajectory per epoch, the selection rules) are printed and written to
``data/08_reporting/paper_scale.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from studies import config_loader, kedro_run, run_config, spread, study_parser  # noqa: E402

EXPERIMENT = "ugvae_paper_scale"
RULES = ("last", "heldout_loss", "validation_svm_linear")
OFFICIAL_PROTOCOL = {"groups.evaluation.split": "train", "groups.series.draw": "in_order"}
SCALE_KEYS = ("epochs", "monitor_every", "monitor_groups")  # what conf/paper_scale sets in train:
REPRESENTATIONS = (
    "global_code",
    "mean_image",
    "mean_local_code",
    "mean_mixture_probs",
    "oracle_label_histogram",
)
SCORES = ("svm_linear", "svm_rbf", "kmeans_ari")


def model_runs(project: Path) -> dict[str, tuple[str, dict[str, object]]]:
    """``model -> (environment, --params)``: the paper's model is the environment itself; the
    variant is conf/base with the data source and the train keys the environment changes."""
    parameters = config_loader(project, "paper_scale")["parameters"]
    scale = {f"train.{key}": parameters["train"][key] for key in SCALE_KEYS}
    return {
        "paper": ("paper_scale", {}),
        "variant": ("base", {"data.source": parameters["data"]["source"], **scale}),
    }


def tracked(uri: str) -> pd.DataFrame:
    """The study's finished, evaluated runs, with ``model``, ``seed``, ``rule`` and ``protocol``."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        return pd.DataFrame(columns=["model", "seed", "rule", "protocol"])
    runs = mlflow.search_runs(experiment_names=[EXPERIMENT])
    if "metrics.eval_global_code_svm_linear" not in runs:
        return pd.DataFrame(columns=["model", "seed", "rule", "protocol"])
    runs = runs[
        (runs["status"] == "FINISHED") & runs["metrics.eval_global_code_svm_linear"].notna()
    ].copy()
    runs["model"] = np.where(runs["params.model.architecture"] == "mlp28", "paper", "variant")
    runs["seed"] = runs["params.train.seed"].astype(int)
    runs["rule"] = runs["params.train.select_epoch"]
    runs["protocol"] = np.where(
        runs["params.groups.evaluation.split"] == "train", "official", "project"
    )
    return runs.sort_values("start_time").drop_duplicates(
        ["model", "seed", "rule", "protocol"], keep="last"
    )


def run_study(project: Path, seeds: list[int]) -> None:
    uri, _ = run_config(project, "paper_scale")
    done = set(zip(*(tracked(uri)[key] for key in ("model", "seed", "rule", "protocol"))))
    for model, (env, extra) in model_runs(project).items():
        for seed in seeds:
            for rule in RULES:
                params = {
                    **extra,
                    "train.seed": seed,
                    "train.select_epoch": rule,
                    "mlflow_experiment": EXPERIMENT,
                    "train.progress": "log",
                    "extract.progress": "log",
                }
                label = f"{model} / seed {seed} / {rule}"
                # the official-protocol score reads the latest model: it follows its training run
                # at once (a study stopped between the two trains that seed again; the newest
                # run of a kind is the one counted)
                rescore = rule == "last" and (model, seed, rule, "official") not in done
                if (model, seed, rule, "project") not in done or rescore:
                    kedro_run(project, env, params, label)
                if rescore:
                    kedro_run(
                        project,
                        env,
                        {**params, **OFFICIAL_PROTOCOL},
                        f"{label} / official protocol",
                        "ingestion,grouping,extract,evaluate",
                    )


def test_table(runs: pd.DataFrame) -> str:
    """Test scores (``last``): every representation of the same groups, both protocols."""
    lines = [
        "| model | protocol | seeds | held-out loss | representation | linear SVM | RBF SVM | k-means ARI |",
        "|---|---|---|---|---|---|---|---|",
    ]
    last = runs[runs["rule"] == "last"]
    for (model, protocol), rows in last.groupby(["model", "protocol"], sort=False):
        for i, name in enumerate(REPRESENTATIONS):
            scores = [spread(rows[f"metrics.eval_{name}_{score}"]) for score in SCORES]
            head = (
                [model, protocol, str(len(rows)), spread(rows["metrics.heldout_loss"], 1)]
                if i == 0
                else ["", "", "", ""]
            )
            lines.append("| " + " | ".join([*head, name, *scores]) + " |")
    return "\n".join(lines)


def trajectory_table(runs: pd.DataFrame, uri: str) -> str:
    """Validation scores per epoch (``last`` runs, test protocol), mean over seeds."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    keys = (
        "heldout_loss",
        "val_global_code_svm_linear",
        "val_global_code_kmeans_ari",
        "val_mean_mixture_probs_svm_linear",
        "val_mean_mixture_probs_kmeans_ari",
        "val_mean_local_code_svm_linear",
        "val_mean_local_code_kmeans_ari",
    )
    lines = [
        "| model | epoch (steps) | held-out loss | μ_β linear SVM | μ_β ARI | mean π linear | mean π ARI | mean μ_z linear | mean μ_z ARI |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    base = runs[(runs["rule"] == "last") & (runs["protocol"] == "project")]
    for model, rows in base.groupby("model", sort=False):
        series = {
            key: pd.DataFrame(
                {
                    run_id: {m.step: m.value for m in client.get_metric_history(run_id, key)}
                    for run_id in rows["run_id"]
                }
            ).mean(axis=1)
            for key in keys
        }
        steps_per_epoch = 54_000 // int(rows["params.train.group_size"].iloc[0])
        for epoch in series["val_global_code_svm_linear"].index:
            cells = [f"{series[key].get(epoch, float('nan')):.3f}" for key in keys]
            cells[0] = f"{series['heldout_loss'].get(epoch, float('nan')):.1f}"
            lines.append(
                f"| {model} | {epoch} ({epoch * steps_per_epoch:,}) | " + " | ".join(cells) + " |"
            )
    return "\n".join(lines)


def selection_table(runs: pd.DataFrame, uri: str) -> str:
    """Per rule: the epochs chosen (one per seed), the held-out loss at them and the test
    scores of the saved model."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    lines = [
        "| model | train.select_epoch | chosen epochs (seeds 1, 2, 3) | held-out loss at them | test μ_β linear SVM | test μ_β k-means ARI |",
        "|---|---|---|---|---|---|",
    ]
    project = runs[runs["protocol"] == "project"]
    for (model, rule), rows in project.groupby(["model", "rule"], sort=False):
        rows = rows.sort_values("seed")
        chosen = rows["metrics.selected_epoch"].astype(int).tolist()
        losses = pd.Series(
            [
                {m.step: m.value for m in client.get_metric_history(run_id, "heldout_loss")}[e]
                for run_id, e in zip(rows["run_id"], chosen)
            ]
        )
        lines.append(
            f"| {model} | {rule} | {', '.join(map(str, chosen))} | {spread(losses, 1)} | "
            f"{spread(rows['metrics.eval_global_code_svm_linear'])} | "
            f"{spread(rows['metrics.eval_global_code_kmeans_ari'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = study_parser(__doc__).parse_args(argv)
    project = Path.cwd()
    if not args.summary:
        run_study(project, args.seeds)
    uri, _ = run_config(project, "paper_scale")
    runs = tracked(uri)
    runs = runs[runs["seed"].isin(args.seeds)]
    order = {"paper": 0, "variant": 1}
    runs = runs.sort_values(
        ["model", "protocol", "rule"], key=lambda c: c.map(order) if c.name == "model" else c
    )
    text = "\n\n".join(
        [
            "## Test scores (the last epoch)\n\n" + test_table(runs),
            "## Validation groups over training (mean of the seeds)\n\n"
            + trajectory_table(runs, uri),
            "## Choosing the epoch\n\n" + selection_table(runs, uri),
        ]
    )
    out = project / "data/08_reporting/paper_scale.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
