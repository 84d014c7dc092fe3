"""The search's selections scored once on test groups, beside today's default and the baselines.

    python -m ugvae_pipeline.search --workers 2     # first: the study (validation groups only)
    python experiments/search_results.py            # then: test groups, seeds 1-3
    python experiments/search_results.py --summary  # only the tables, from the runs tracked
    python experiments/search_results.py --env search_neural_statistician   # another study

It reads the study of conf's ``search:`` block (its storage and name) and prints what it
holds: the trials by state and the best trial under each selection rule (``heldout_loss``: no
labels anywhere; ``validation_group_score``: validation labels only to choose) beside trial 0,
the configuration as it stands. Then, one run after another, as a user would:

- ``default``: ``kedro run`` with the search's fixed values (``search.params``: its training
  length and monitor), i.e. trial 0's configuration, on the **test** groups;
- ``<rule>``: ``kedro run --env search_<study>_<rule>`` (the environment the search exported);
- ``neural_statistician``: the Neural Statistician with the same fixed values;

each for seeds 1-3, on the official digit series; each model re-scored without retraining
on the harder series (``groups.series.digits=all_of_first_256_numbers``) and on the search's
validation groups (the three seeds of every selection, read before any test score); and each
configuration's model options trained on ``--env domain_alignment`` (its own training groups,
the search's training length). Everything goes to the MLflow experiment
``ugvae_search_results``; a run already there is not redone. The tables (every pooling baseline
of the same groups, seed spread) are printed and written to
``data/08_reporting/search_results.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from studies import config_loader, kedro_run, run_config, spread, study_parser  # noqa: E402

EXPERIMENT = "ugvae_search_results"
HARDER = {"groups.series.digits": "all_of_first_256_numbers"}
REPRESENTATIONS = (
    "global_code",
    "mean_image",
    "mean_local_code",
    "mean_mixture_probs",
    "oracle_label_histogram",
)
SCORES = ("svm_linear", "svm_rbf", "kmeans_ari")
EVALUATIONS = ("series", "harder series", "validation", "domain alignment")


def search_block(project: Path, env: str) -> dict:
    """The ``search:`` block of ``env``, without the dimensions it sets to null."""
    search = config_loader(project, env)["parameters"]["search"]
    return {**search, "space": {k: v for k, v in search["space"].items() if v is not None}}


def study_report(project: Path, env: str = "base") -> tuple[str, dict[str, str]]:
    """The study's summary (Markdown) and ``rule -> exported environment``."""
    import optuna

    from ugvae_pipeline.search import RULES, best_trials

    search = search_block(project, env)
    study = optuna.load_study(study_name=search["study_name"], storage=search["storage"])
    trials = study.get_trials(deepcopy=False)
    states = pd.Series([t.state.name for t in trials]).value_counts().to_dict()
    rows = [("trial 0 (the configuration as it stands)", trials[0])]
    rows += [(f"best by {rule}", trial) for rule, trial in best_trials(study).items()]
    keys = list(search["space"])
    lines = [
        f"Study `{search['study_name']}`: {len(trials)} trials ({states}); sampler "
        f"{search['sampler']} (seed {search['sampler_seed']} + worker), pruner {search['pruner']} "
        f"after {search['pruner_warmup_epochs']} epochs; objective {search['objective']}.",
        "",
        "| trial | number | validation group score | held-out loss | "
        + " | ".join(f"`{k}`" for k in keys)
        + " |",
        "|---|---|---|---|" + "---|" * len(keys),
    ]
    for label, trial in rows:
        attrs = trial.user_attrs
        values = [
            f"{v:.3g}" if isinstance(v, float) else str(v)
            for v in (trial.params.get(k, "–") for k in keys)
        ]
        lines.append(
            f"| {label} | {trial.number} | {attrs.get('validation_group_score', float('nan')):.4f} "
            f"| {attrs.get('heldout_loss', float('nan')):.2f} | " + " | ".join(values) + " |"
        )
    envs = {
        rule: f"{search['export_prefix']}_{search['study_name']}_{rule}"
        for rule in best_trials(study)
        if rule in RULES
    }
    return "\n".join(lines), envs


def configurations(
    project: Path, envs: dict[str, str], study_env: str = "base"
) -> dict[str, tuple[str, dict]]:
    """``name -> (environment, --params)`` of every configuration scored on test groups: the
    study's default (conf/base with the study's fixed training, model and training-group
    values: its trial 0) and its
    selections; the shipped study adds the Neural Statistician at the same fixed values. A study
    of another environment names its configurations ``<study>/<name>``."""
    search = search_block(project, study_env)
    fixed = {  # how trial 0 trained (not its validation groups)
        key: value
        for key, value in search["params"].items()
        if key.startswith(("train.", "model.", "groups.training.", "groups.clusters."))
        and not key.endswith(".progress")
    }
    prefix = "" if study_env == "base" else f"{search['study_name']}/"
    out = {f"{prefix}default": ("base", dict(fixed))}
    out.update({f"{prefix}{rule}": (env, {}) for rule, env in envs.items()})
    if study_env == "base":
        out["neural_statistician"] = ("base", {**fixed, "model.name": "neural_statistician"})
    return out


def model_keys(project: Path, env: str, params: dict) -> dict:
    """The model options (and training length) of a configuration, for another environment."""
    parameters = config_loader(project, env)["parameters"]
    keys = {f"model.{k}": v for k, v in parameters["model"].items()}
    for key in (
        "epochs",
        "monitor_every",
        "global_kl_warmup_epochs",
        "global_kl_free_bits",
        "groups_per_step",
    ):
        keys[f"train.{key}"] = parameters["train"][key]
    keys.update({k: v for k, v in params.items() if k.startswith(("model.", "train."))})
    return keys


def tracked(uri: str) -> pd.DataFrame:
    """The experiment's finished, evaluated runs with ``configuration``, ``seed``, ``evaluation``."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    empty = pd.DataFrame(columns=["configuration", "seed", "evaluation"])
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        return empty
    runs = mlflow.search_runs(experiment_names=[EXPERIMENT])
    if "tags.search_configuration" not in runs or "metrics.eval_mean_image_svm_linear" not in runs:
        return empty
    runs = runs[(runs["status"] == "FINISHED") & runs["metrics.eval_mean_image_svm_linear"].notna()]
    runs = runs.assign(
        configuration=runs["tags.search_configuration"],
        seed=runs["params.train.seed"].astype(int),
        evaluation=runs["tags.search_evaluation"],
    )
    return runs.sort_values("start_time").drop_duplicates(
        ["configuration", "seed", "evaluation"], keep="last"
    )


def _tag_latest(uri: str, configuration: str, evaluation: str) -> None:
    """Name the experiment's newest run (the one just made) for the tables."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    (run,) = client.search_runs(
        [experiment.experiment_id], order_by=["start_time DESC"], max_results=1
    )
    client.set_tag(run.info.run_id, "search_configuration", configuration)
    client.set_tag(run.info.run_id, "search_evaluation", evaluation)


def run_study(project: Path, configs: dict[str, tuple[str, dict]], seeds: list[int]) -> None:
    uri, _ = run_config(project, "base")
    done = set(zip(*(tracked(uri)[k] for k in ("configuration", "seed", "evaluation"))))
    common = {"mlflow_experiment": EXPERIMENT, "train.progress": "log", "extract.progress": "log"}
    search = config_loader(project, "base")["parameters"]["search"]  # the validation groups
    validation = {k: v for k, v in search["params"].items() if k.startswith("groups.")}
    for name, (env, params) in configs.items():
        for seed in seeds:
            run = {**params, **common, "train.seed": seed}
            label = f"{name} / seed {seed}"
            if any((name, seed, evaluation) not in done for evaluation in EVALUATIONS[:3]):
                kedro_run(project, env, run, label)
                _tag_latest(uri, name, "series")
                # the model just trained (the latest version), scored again without retraining
                for evaluation, extra in (("harder series", HARDER), ("validation", validation)):
                    kedro_run(
                        project,
                        env,
                        {**run, **extra},
                        f"{label} / {evaluation}",
                        "ingestion,grouping,extract,evaluate",
                    )
                    _tag_latest(uri, name, evaluation)
            if (name, seed, "domain alignment") not in done:
                keys = model_keys(project, env, params)
                kedro_run(
                    project,
                    "domain_alignment",
                    {**keys, **common, "train.seed": seed},
                    f"{label} / domain alignment",
                )
                _tag_latest(uri, name, "domain alignment")


def scores_table(runs: pd.DataFrame, evaluation: str) -> str:
    """Per configuration: seeds, held-out loss, β-effect, μ_β spread, then every
    representation's scores on the same groups."""
    lines = [
        "| configuration | seeds | held-out loss | β-effect | μ_β spread / std | representation | linear SVM | RBF SVM | k-means ARI |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, rows in runs[runs["evaluation"] == evaluation].groupby("configuration", sort=False):
        first = True
        for rep in REPRESENTATIONS:
            if (
                f"metrics.eval_{rep}_svm_linear" not in rows
                or rows[f"metrics.eval_{rep}_svm_linear"].isna().all()
            ):
                continue
            head = ["", "", "", "", ""]
            if first:
                head = [
                    name,
                    str(len(rows)),
                    spread(rows.get("metrics.heldout_loss", pd.Series(dtype=float)), 1),
                    spread(rows.get("metrics.eval_beta_effect", pd.Series(dtype=float))),
                    spread(rows.get("metrics.eval_global_code_spread", pd.Series(dtype=float))),
                ]
                first = False
            cells = [spread(rows[f"metrics.eval_{rep}_{score}"]) for score in SCORES]
            lines.append("| " + " | ".join([*head, rep, *cells]) + " |")
    return "\n".join(lines)


def domain_table(runs: pd.DataFrame) -> str:
    keys = (
        ("heldout_loss", "held-out loss", 1),
        ("eval_domain_domain_accuracy", "domain accuracy (μ_β)", 3),
        ("eval_domain_knn_a_to_b", "k-NN MNIST → UCI (μ_z)", 3),
        ("eval_domain_knn_b_to_a", "k-NN UCI → MNIST", 3),
        ("eval_beta_effect", "β-effect", 3),
        ("eval_beta_effect_across_types", "β-effect across domains", 3),
    )
    lines = [
        "| configuration | seeds | " + " | ".join(label for _, label, _ in keys) + " |",
        "|---|---|" + "---|" * len(keys),
    ]
    domain = runs[runs["evaluation"] == "domain alignment"]
    for name, rows in domain.groupby("configuration", sort=False):
        cells = [
            spread(rows.get(f"metrics.{key}", pd.Series(dtype=float)), digits)
            for key, _, digits in keys
        ]
        lines.append(f"| {name} | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = study_parser(__doc__)
    parser.add_argument(
        "--env", default="base", help="the environment whose search: block names the study"
    )
    args = parser.parse_args(argv)
    project = Path.cwd()
    report, envs = study_report(project, args.env)
    missing = [env for env in envs.values() if not (project / "conf" / env).is_dir()]
    if missing:
        raise SystemExit(
            f"the search's exported environments {missing} are missing: run the search"
        )
    configs = configurations(project, envs, args.env)
    if not args.summary:
        run_study(project, configs, args.seeds)
    uri, _ = run_config(project, "base")
    runs = tracked(uri)
    runs = runs[runs["seed"].isin(args.seeds) & runs["configuration"].isin(configs)]
    order = {name: i for i, name in enumerate(configs)}
    runs = runs.sort_values("configuration", key=lambda c: c.map(order))
    text = "\n\n".join(
        [
            "## The study (validation groups)\n\n" + report,
            "## The same models on the validation groups (seeds 1-3)\n\n"
            + scores_table(runs, "validation"),
            "## Official series (test groups)\n\n" + scores_table(runs, "series"),
            "## Harder series (test groups; the same models)\n\n"
            + scores_table(runs, "harder series"),
            "## Domain alignment (test groups)\n\n" + domain_table(runs),
        ]
    )
    suffix = "" if args.env == "base" else f"_{args.env}"
    out = project / f"data/08_reporting/search_results{suffix}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
