"""An Optuna search over the project's options, every trial a real Kedro run on validation groups.

    python -m ugvae_pipeline.search                     # the study of conf's search: block
    python -m ugvae_pipeline.search --workers 2         # two worker processes on this machine
    python -m ugvae_pipeline.search --env ENV --params "search.n_trials=10,train.epochs=5"

Each trial samples the ``search.space`` (Optuna's TPE or random sampler), then runs the whole
chain (ingestion → grouping → training → extract → evaluate) through a Kedro session of the
project, with the parameters ``kedro run --env ENV --params ...`` would give, then
``search.params``, then the trial's values, all checked as ``kedro run`` checks them. The
evaluation groups are **validation** groups (``search.params`` sets them); test images are
never read. Each trial is an MLflow run of experiment ``search_<study>`` tagged
``optuna_study`` and ``optuna_trial``. The objective, declared in ``search.objective`` before the
study starts: ``validation_group_score`` ((linear-SVM accuracy + k-means ARI) / 2 of the group
code on the validation groups) or ``heldout_loss`` (the last epoch's held-out negative ELBO).
Both are stored with every trial, so the two selections (no labels at all; validation labels
only to choose) are read from one study. Trials are pruned (``search.pruner``) on the same
criterion per epoch: the training monitor's validation score, or the held-out loss.

The study lives in ``search.storage``: a database URL (SQLite here; every machine pointing at
one PostgreSQL or MySQL database joins the same study) or ``journal:<file>``. Several worker
processes join it. A study stopped part-way continues when the command runs again: finished
trials are kept; a trial a signal stopped is marked FAIL; a trial whose process was killed
outright is marked FAIL by the database storage's heartbeat once its grace period has passed.

At the end the best trial under each rule is written as a Kedro environment,
``conf/<export_prefix>_<study>_<rule>/parameters.yml``: ``kedro run --env <it>`` retrains it
and scores it once on the test groups.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RULES = {  # selection rule -> (trial attribute, direction)
    "heldout_loss": ("heldout_loss", "minimize"),
    "validation_group_score": ("validation_group_score", "maximize"),
}
HEARTBEAT_SECONDS, GRACE_SECONDS = 30, 120


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    """``tree["a"]["b"] = value`` for ``key`` ``"a.b"`` (creating the mappings on the way)."""
    *parents, leaf = key.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = value


def nested(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}``."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        set_dotted(out, key, value)
    return out


def flattened(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        out.update(flattened(value, f"{name}.") if isinstance(value, dict) else {name: value})
    return out


def fixed_values(search: dict[str, Any], command_line: dict[str, Any]) -> dict[str, Any]:
    """What every trial sets over conf: ``search.params``, then ``--params`` (dotted keys)."""
    return {**search["params"], **flattened(command_line)}


def merged(params: dict[str, Any], flat: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``params`` with the dotted ``flat`` values set."""
    import copy

    out = copy.deepcopy(params)
    for key, value in flat.items():
        set_dotted(out, key, value)
    return out


def check_space(params: dict[str, Any], command_line: dict[str, Any]) -> dict[str, Any]:
    """The checked ``search:`` block. Every dotted key of ``search.params`` and
    ``search.space`` must name an existing parameter, and every choice and both ends of every
    range must pass the same checks as ``kedro run`` (with the fixed values applied)."""
    from ugvae_pipeline.parameters import check_group, check_parameters

    search = params.get("search")
    check_group("search", search)
    # an environment removes a dimension of conf/base's space by setting it to null
    search = {**search, "space": {k: v for k, v in search["space"].items() if v is not None}}
    if not search["space"]:
        raise ValueError("search.space: every dimension is null; give at least one")
    for origin, keys in (("search.params", search["params"]), ("search.space", search["space"])):
        for key in keys:
            node: Any = params
            for part in key.split("."):
                if not isinstance(node, dict) or part not in node:
                    raise ValueError(
                        f"{origin}: {key!r} is not a parameter of this configuration "
                        "(dotted keys of conf's parameter groups, e.g. model.dim_beta)"
                    )
                node = node[part]
    fixed = merged(params, fixed_values(search, command_line))
    check_parameters(fixed)
    for key, dimension in search["space"].items():
        values = dimension.get("choices") or [dimension["low"], dimension["high"]]
        for value in values:
            try:
                check_parameters(merged(fixed, {key: value}))
            except ValueError as err:
                raise ValueError(
                    f"search.space.{key}: the value {value!r} is refused: {err}"
                ) from err
    return search


def suggest(trial, space: dict[str, Any]) -> dict[str, Any]:
    """The trial's values, one per dimension of the space."""
    values = {}
    for key, dimension in space.items():
        if dimension.get("choices") is not None:
            values[key] = trial.suggest_categorical(key, dimension["choices"])
        elif isinstance(dimension["low"], int) and isinstance(dimension["high"], int):
            values[key] = trial.suggest_int(
                key, dimension["low"], dimension["high"], log=dimension.get("log", False)
            )
        else:
            values[key] = trial.suggest_float(
                key,
                float(dimension["low"]),
                float(dimension["high"]),
                log=dimension.get("log", False),
            )
    return values


def epoch_criterion(row: dict[str, Any], objective: str) -> float | None:
    """The pruning value of one epoch's history row (None where the epoch has none)."""
    if objective == "heldout_loss":
        return row.get("heldout_loss")
    for code in ("global_code", "mean_local_code"):
        svm, ari = row.get(f"val_{code}_svm_linear"), row.get(f"val_{code}_kmeans_ari")
        if svm is not None and ari is not None:
            return (svm + ari) / 2
    return None


def storage_for(url: str):
    """An Optuna storage for ``url``: a database URL (with heartbeats), or ``journal:<file>``."""
    import optuna

    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.RDBStorage(
        url,
        heartbeat_interval=HEARTBEAT_SECONDS,
        grace_period=GRACE_SECONDS,
        engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None,
    )


def baseline_values(params: dict[str, Any], search: dict[str, Any]) -> dict[str, Any]:
    """The configuration's own value of every dimension of the space (with the fixed values
    applied): the baseline a new study scores first."""
    values = {}
    for key in search["space"]:
        node: Any = params
        for part in key.split("."):
            node = node[part]
        values[key] = node
    return values


def open_study(search: dict[str, Any], baseline: dict[str, Any] | None = None, worker: int = 0):
    """The study (created, with its baseline trial, by the first to open it). Worker ``i``'s
    sampler is seeded ``search.sampler_seed + i``: equally seeded workers would draw the same
    trials."""
    import optuna

    seed = search["sampler_seed"] + worker
    sampler = (
        optuna.samplers.TPESampler(seed=seed)
        if search["sampler"] == "tpe"
        else optuna.samplers.RandomSampler(seed=seed)
    )
    pruner = (
        optuna.pruners.MedianPruner(n_warmup_steps=search["pruner_warmup_epochs"])
        if search["pruner"] == "median"
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(
        study_name=search["study_name"],
        storage=storage_for(search["storage"]),
        sampler=sampler,
        pruner=pruner,
        direction=RULES[search["objective"]][1],
        load_if_exists=True,
    )
    declared = study.user_attrs.get("objective")
    if declared is None:
        study.set_user_attr("objective", search["objective"])
        study.set_user_attr("space", search["space"])
        if baseline:  # trial 0: the configuration as it stands, scored the same way
            study.enqueue_trial(baseline, user_attrs={"baseline": True})
    elif declared != search["objective"]:
        raise ValueError(
            f"study {search['study_name']!r} was declared with search.objective={declared}; "
            f"it cannot continue with {search['objective']}: use another search.study_name"
        )
    return study


class Project:
    """The project a search runs in: its path, environment and command-line parameters."""

    def __init__(self, path: Path, env: str | None, params: dict[str, Any]) -> None:
        self.path, self.env, self.params = path, env, params

    def session(self, runtime_params: dict[str, Any]):
        from kedro.framework.project import settings
        from kedro.framework.startup import bootstrap_project

        bootstrap_project(self.path)
        return settings.SESSION_CLASS.create(
            project_path=self.path, env=self.env, runtime_params=runtime_params
        )

    def parameters(self) -> dict[str, Any]:
        """The merged parameters ``kedro run --env ENV --params ...`` would run with."""
        with self.session(self.params) as session:
            return session.load_context().params


class StudyInterrupted(KeyboardInterrupt):
    """A signal stopped a trial: Optuna marks it FAIL (it does so for a ``KeyboardInterrupt``)
    and the command exits with ``128 + signum``."""

    def __init__(self, interrupt) -> None:
        super().__init__(str(interrupt))
        self.signum = interrupt.signum


def run_trial(trial, project: Project, search: dict[str, Any], experiment: str) -> float:
    """One trial: a Kedro session running the whole chain on validation groups."""
    import mlflow
    import optuna
    from kedro_mlflow.framework.hooks.mlflow_hook import mlflow_hook

    from ugvae_pipeline.training.listeners import epoch_listener
    from ugvae_pipeline.training.preemption import Interrupted

    values = suggest(trial, search["space"])
    flat = {**fixed_values(search, project.params), **values, "mlflow_experiment": experiment}
    runtime = nested(flat)
    seen: dict[str, Any] = {}

    def listen(row: dict[str, Any]) -> None:
        if "run_id" not in seen and mlflow.active_run() is not None:
            seen["run_id"] = mlflow.active_run().info.run_id
            mlflow.set_tags(
                {"optuna_study": search["study_name"], "optuna_trial": str(trial.number)}
            )
        value = epoch_criterion(row, search["objective"])
        if value is not None and math.isfinite(value):
            trial.report(value, int(row["epoch"]))
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {int(row['epoch'])}: {value:.4f}")

    while mlflow.active_run():
        mlflow.end_run()
    mlflow_hook.run_id = None  # a fresh MLflow run for every trial, as from the command line
    try:
        with epoch_listener(listen), project.session(runtime) as session:
            # this run's own artifacts, never another worker's newer "latest" version
            own = session.store["session_id"]
            context = session.load_context()
            produced = {
                name
                for name in context.catalog.keys()  # noqa: SIM118 (the catalog is not a dict)
                if getattr(context.catalog.get(name), "_version", None) is not None
            }
            session.run(load_versions={name: own for name in produced})
    except Interrupted as interrupt:  # Optuna marks the trial FAIL, then the command stops
        raise StudyInterrupted(interrupt) from interrupt
    except optuna.TrialPruned:
        _tag(seen.get("run_id"), {"optuna_state": "PRUNED"})
        raise
    finally:
        while mlflow.active_run():
            mlflow.end_run()
    run = mlflow.MlflowClient().get_run(seen["run_id"])
    metrics = run.data.metrics
    code = "global_code" if "eval_global_code_svm_linear" in metrics else "mean_local_code"
    score = (metrics[f"eval_{code}_svm_linear"] + metrics[f"eval_{code}_kmeans_ari"]) / 2
    trial.set_user_attr("validation_group_score", score)
    trial.set_user_attr("heldout_loss", metrics["heldout_loss"])
    trial.set_user_attr("mlflow_run_id", seen["run_id"])
    _tag(seen["run_id"], {"optuna_state": "COMPLETE"})
    return score if search["objective"] == "validation_group_score" else metrics["heldout_loss"]


def _tag(run_id: str | None, tags: dict[str, str]) -> None:
    if run_id is not None:
        import mlflow

        for key, value in tags.items():
            mlflow.MlflowClient().set_tag(run_id, key, value)


def best_trials(study) -> dict[str, Any]:
    """The best complete trial under each selection rule (a rule no trial has: left out)."""
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    best = {}
    for rule, (attribute, direction) in RULES.items():
        scored = [t for t in done if attribute in t.user_attrs]
        if scored:
            pick = min if direction == "minimize" else max
            best[rule] = pick(scored, key=lambda t: t.user_attrs[attribute])
    return best


def export(project: Project, search: dict[str, Any], study) -> list[Path]:
    """Write each rule's best trial as ``conf/<prefix>_<study>_<rule>/parameters.yml``: the
    values every trial was given (``search.params`` and ``--params``) and the trial's own,
    evaluated on the **test** groups (the validation settings are not carried over). A file the
    search did not write is never overwritten."""
    import yaml

    written = []
    evaluation_keys = (
        "groups.evaluation.split",
        "groups.series.seed",
        "groups.evaluation.random.seed",
    )
    for rule, trial in best_trials(study).items():
        folder = project.path / "conf" / f"{search['export_prefix']}_{search['study_name']}_{rule}"
        target = folder / "parameters.yml"
        header = (
            f"# Written by python -m ugvae_pipeline.search: study {search['study_name']!r}, the best "
            f"trial by {rule} (trial {trial.number}: validation group score "
            f"{trial.user_attrs['validation_group_score']:.4f}, held-out loss "
            f"{trial.user_attrs['heldout_loss']:.2f}).\n# kedro run --env {folder.name} retrains "
            "it and scores it on the test groups.\n"
        )
        if target.exists() and not target.read_text().startswith(
            "# Written by python -m ugvae_pipeline.search"
        ):
            raise FileExistsError(
                f"{target} exists and was not written by the search: move it away"
            )
        fixed = {
            key: value
            for key, value in fixed_values(search, project.params).items()
            if key not in evaluation_keys
            and not key.endswith(".progress")
            and key.split(".")[0] not in ("search", "mlflow_experiment")
        }
        folder.mkdir(parents=True, exist_ok=True)
        target.write_text(
            header + yaml.safe_dump(nested({**fixed, **trial.params}), sort_keys=True)
        )
        written.append(target)
    return written


def work(
    project: Project,
    search: dict[str, Any],
    baseline: dict[str, Any] | None = None,
    worker: int = 0,
) -> None:
    """One worker: trials until the study holds ``search.n_trials`` finished ones (a new study
    first scores ``baseline``, the configuration's own values)."""
    import torch

    torch.set_num_threads(1)
    experiment = search.get("mlflow_experiment") or f"search_{search['study_name']}"
    study = open_study(search, baseline, worker)
    if budget_spent(study, search["n_trials"]):
        return
    study.optimize(
        lambda trial: run_trial(trial, project, search, experiment),
        callbacks=[lambda study, trial: budget_spent(study, search["n_trials"]) and study.stop()],
        catch=(ValueError, FloatingPointError),
    )


def budget_spent(study, n_trials: int) -> bool:
    """Whether the study's finished (complete or pruned) trials and those other workers are
    running already reach ``n_trials``: a worker then starts no new trial, so a study of several
    workers stops at ``n_trials`` rather than one more per worker. (A trial left ``RUNNING`` by
    a killed process counts until the heartbeat marks it failed; run the command again.)"""
    from optuna.trial import TrialState

    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    return len(study.get_trials(deepcopy=False, states=states)) >= n_trials


def spawn_workers(argv: list[str], n: int) -> int:
    """Run ``n`` worker processes of this command; a signal to this one reaches them all."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "ugvae_pipeline.search", *argv, "--worker", str(index)], env=env
        )
        for index in range(n)
    ]

    def forward(signum, frame):
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        codes = [worker.wait() for worker in workers]
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return max(codes, key=abs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ugvae_pipeline.search", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--env", default=None, help="the Kedro environment (as kedro run --env)")
    parser.add_argument("--params", default="", help='as kedro run --params: "a.b=1,c.d=x"')
    parser.add_argument(
        "--workers", type=int, default=None, help="worker processes (search.workers)"
    )
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from omegaconf import OmegaConf

    pairs = [item for item in args.params.split(",") if item.strip()]
    runtime = OmegaConf.to_container(OmegaConf.from_dotlist(pairs)) if pairs else {}
    project = Project(Path.cwd(), args.env, runtime)
    parameters = project.parameters()
    search = check_space(parameters, runtime)
    baseline = baseline_values(merged(parameters, fixed_values(search, runtime)), search)
    workers = args.workers or search["workers"]
    if args.worker is not None:
        try:
            work(project, search, baseline, args.worker)
        except KeyboardInterrupt as stop:
            return 128 + getattr(stop, "signum", signal.SIGINT)
        return 0
    if workers > 1:
        open_study(search, baseline)  # created once, before the workers join it
        own = (["--env", args.env] if args.env else []) + ["--params", args.params]
        code = spawn_workers(own, workers)
        if code:
            return code
    else:
        try:
            work(project, search, baseline)
        except KeyboardInterrupt as stop:
            print(f"[search] stopped: {stop}; run the command again to continue", flush=True)
            return 128 + getattr(stop, "signum", signal.SIGINT)
    study = open_study(search)
    for path in export(project, search, study):
        print(f"[search] wrote {path.relative_to(project.path)}", flush=True)
    report(study)
    return 0


def report(study) -> None:
    """The study's trials by state, and the best trial under each rule."""
    from collections import Counter

    states = Counter(t.state.name for t in study.get_trials(deepcopy=False))
    print(f"[search] study {study.study_name}: {dict(states)}", flush=True)
    for rule, trial in best_trials(study).items():
        print(
            f"[search] best by {rule}: trial {trial.number}, validation group score "
            f"{trial.user_attrs['validation_group_score']:.4f}, held-out loss "
            f"{trial.user_attrs['heldout_loss']:.2f}, {trial.params}",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
