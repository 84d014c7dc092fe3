"""The Optuna search: real studies (SQLite storage) of real Kedro runs on validation groups."""

import os
import signal
import subprocess
import sys

import mlflow
import optuna
import pytest
from kedro.config import OmegaConfigLoader

from tests.conftest import DEFAULT_TINY, PROJECT_ROOT, cli_params
from ugvae_pipeline.parameters import check_parameters
from ugvae_pipeline.search import Project, check_space, merged, run_trial
from ugvae_pipeline.settings import CONFIG_LOADER_ARGS

# every trial: the tiny whole chain, one epoch (its monitor scores the last epoch)
TINY = {**DEFAULT_TINY, "train": {**DEFAULT_TINY["train"], "progress": "off"}}


def _parameters(root, env=None):
    return OmegaConfigLoader(str(root / "conf"), env=env, **CONFIG_LOADER_ARGS)["parameters"]


def _search_command(project, study, n_trials, *extra, train=None):
    params = {**TINY, "train": {**TINY["train"], **(train or {})}}
    params["search"] = {
        "study_name": study,
        "storage": f"sqlite:///{project / 'optuna.db'}",
        "n_trials": n_trials,
    }
    return [
        sys.executable,
        "-m",
        "ugvae_pipeline.search",
        "--params",
        cli_params(params),
        *extra,
    ]


def _study(project, name):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{project / 'optuna.db'}")


def _trial_runs(project, study):
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    try:
        return mlflow.search_runs(experiment_names=[f"search_{study}"])
    finally:
        mlflow.set_tracking_uri(None)


def test_the_space_is_checked_like_kedro_run_before_any_trial():
    params = _parameters(PROJECT_ROOT)
    assert check_space(params, {})["objective"] == "validation_group_score"
    bad_key = merged(params, {"search.space": {"model.dim_bta": {"low": 8, "high": 64}}})
    with pytest.raises(ValueError, match=r"search.space: 'model.dim_bta' is not a parameter"):
        check_space(bad_key, {})
    bad_value = merged(params, {"search.space": {"model.n_components": {"low": 0, "high": 3}}})
    with pytest.raises(
        ValueError, match=r"search.space.model.n_components: the value 0 is refused"
    ):
        check_space(bad_value, {})
    bad_range = merged(params, {"search.space": {"model.dim_beta": {"low": 8}}})
    with pytest.raises(ValueError, match=r"give either choices, or low and high"):
        check_space(bad_range, {})
    bad_fixed = merged(params, {"search.params": {"train.epochs": 0}})
    with pytest.raises(ValueError, match=r"train.epochs"):
        check_space(bad_fixed, {})
    # an environment leaves a dimension out by setting it to null (its search: block is
    # merged into conf/base's); a space of nulls only is refused
    space = params["search"]["space"]
    dropped = merged(params, {"search.space": {**space, "model.dim_beta": None}})
    assert set(check_space(dropped, {})["space"]) == set(space) - {"model.dim_beta"}
    empty = merged(params, {"search.space": dict.fromkeys(space)})
    with pytest.raises(ValueError, match=r"every dimension is null"):
        check_space(empty, {})


def test_the_neural_statistician_study_drops_the_ugvae_dimensions():
    params = _parameters(PROJECT_ROOT, "search_neural_statistician")
    search = check_space(params, {})
    assert search["params"]["model.name"] == "neural_statistician"
    assert "model.global_encoder" not in search["space"] and "model.dim_z" in search["space"]


def test_two_workers_share_one_study_and_the_best_trials_become_environments(project_copy):
    done = subprocess.run(
        _search_command(project_copy, "two", 4, "--workers", "2"),
        cwd=project_copy,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    trials = _study(project_copy, "two").get_trials()
    # a worker starts no trial once finished + running ones reach 4 (a fifth only when both
    # workers end a trial within the same few milliseconds, between a check and the next trial)
    assert len(trials) in (4, 5) and {t.state.name for t in trials} == {"COMPLETE"}
    # trial 0 is the configuration as it stands (conf/base's variant), scored the same way
    assert trials[0].user_attrs["baseline"] and trials[0].params == {
        "model.global_encoder": "product",
        "model.global_factor_input": "probs",
        "model.global_factor_variance": "shared",
        "model.mixture_prior": "uniform",
        "model.dim_beta": 32,
        "model.n_components": 30,
        "train.global_kl_warmup_epochs": 0,
        "groups.training.strategy": "random",
        "groups.clusters.alpha": 0.1,
        "groups.clusters.n_clusters": 10,
    }
    assert sum(bool(t.user_attrs.get("baseline")) for t in trials) == 1
    # each worker's sampler has its own seed: equally seeded workers drew identical trials
    assert len({tuple(sorted(t.params.items())) for t in trials}) == len(trials)
    runs = _trial_runs(project_copy, "two")
    assert sorted(runs["tags.optuna_trial"].astype(int)) == list(range(len(trials)))
    assert set(runs["status"]) == {"FINISHED"} and set(runs["tags.optuna_study"]) == {"two"}
    assert runs["tags.process_id"].nunique() == 2  # two processes ran the trials
    # the trials are scored on validation groups only, with their own seeds
    assert set(runs["params.groups.evaluation.split"]) == {"validation"}
    assert set(runs["params.groups.series.seed"]) == {"3024"}
    # each trial's objective is the score of its own tracked run
    by_run = runs.set_index("run_id")
    for trial in trials:
        run = by_run.loc[trial.user_attrs["mlflow_run_id"]]
        score = (
            run["metrics.eval_global_code_svm_linear"] + run["metrics.eval_global_code_kmeans_ari"]
        ) / 2
        assert trial.value == pytest.approx(score)
        assert str(trial.params["model.global_encoder"]) == run["params.model.global_encoder"]
    for rule in ("heldout_loss", "validation_group_score"):
        env = f"search_two_{rule}"
        params = _parameters(project_copy, env)
        check_parameters(params)
        assert params["groups"]["evaluation"]["split"] == "test"  # scored on test groups
        best = {
            "heldout_loss": min(trials, key=lambda t: t.user_attrs["heldout_loss"]),
            "validation_group_score": max(trials, key=lambda t: t.value),
        }[rule]
        assert params["model"]["dim_beta"] == best.params["model.dim_beta"]
        assert params["train"]["epochs"] == 1  # the values every trial was given


def test_a_stopped_study_continues_keeping_its_finished_trials(project_copy):
    command = _search_command(project_copy, "stopped", 2, train={"epochs": 30})
    worker = subprocess.Popen(
        command, cwd=project_copy, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    seen = []
    for line in worker.stdout:  # the first trial is training: stop the study there
        seen.append(line)
        if "training on" in line:
            worker.send_signal(signal.SIGTERM)
            break
    output = "".join(seen) + worker.communicate(timeout=600)[0]
    assert worker.returncode == 128 + signal.SIGTERM, output[-3000:]
    assert "run the command again to continue" in output
    assert [t.state.name for t in _study(project_copy, "stopped").get_trials()] == ["FAIL"]
    again = subprocess.run(
        _search_command(project_copy, "stopped", 2),
        cwd=project_copy,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    states = [t.state.name for t in _study(project_copy, "stopped").get_trials()]
    assert states == ["FAIL", "COMPLETE", "COMPLETE"]
    runs = _trial_runs(project_copy, "stopped").sort_values("start_time")
    assert list(runs["status"]) == ["KILLED", "FINISHED", "FINISHED"]


def test_a_trial_below_the_pruner_stops_at_its_first_scored_epoch(project_copy):
    params = _parameters(project_copy)
    runtime = {**TINY, "train": {**TINY["train"], "epochs": 2, "monitor_every": 1}}
    search = check_space(params, runtime)
    # (linear SVM + ARI) / 2 is at most 1: a threshold of 1.5 prunes the first scored epoch
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=1.5)
    )
    environment = dict(os.environ)
    try:
        study.optimize(
            lambda trial: run_trial(trial, Project(project_copy, None, runtime), search, "prune"),
            n_trials=1,
        )
    finally:
        os.environ.clear()
        os.environ.update(environment)
        while mlflow.active_run():
            mlflow.end_run()
    (trial,) = study.get_trials()
    assert trial.state.name == "PRUNED" and list(trial.intermediate_values) == [1]
    mlflow.set_tracking_uri(f"sqlite:///{project_copy / 'mlflow.db'}")
    try:
        runs = mlflow.search_runs(experiment_names=["prune"])
    finally:
        mlflow.set_tracking_uri(None)
    assert list(runs["status"]) == ["FAILED"] and list(runs["tags.optuna_state"]) == ["PRUNED"]
