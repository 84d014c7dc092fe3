"""Re-scorings of saved models in the comparison table, from a real MLflow (SQLite) store: filed
under the scored model's own parameters and seed, each kept."""

from __future__ import annotations

import mlflow

from ugvae_pipeline.evaluation.comparison import runs_table, summary_table

SCORED = {
    "model.name": "ugvae",
    "model.dim_beta": 16,
    "data.source": "mnist_embedded",
    "groups.training.strategy": "random",
    "groups.evaluation.strategy": "series",
}


def test_rescorings_are_filed_under_their_model_and_seed_and_each_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # set_tracking_uri sets it: put back after
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("rescores")
    trained = {}
    for seed in (7, 8):  # two training runs, not evaluated
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_params({**SCORED, "train.seed": seed})
            mlflow.log_metric("heldout_loss", 150.0)
        trained[seed] = run.info.run_id
    for seed, accuracy in ((7, 0.6), (8, 0.8)):  # each model re-scored (extract,evaluate)
        with mlflow.start_run(experiment_id=experiment):
            mlflow.log_params({**SCORED, "train.seed": seed})
            mlflow.set_tags({"trained_in_run": trained[seed], "model_version": f"v{seed}"})
            mlflow.log_metric("eval_global_code_svm_linear", accuracy)
    runs = mlflow.search_runs(experiment_ids=[experiment], output_format="pandas")

    table = runs_table(runs)
    assert sorted(table["seed"]) == [7, 8]
    assert dict(zip(table["seed"], table["trained_in_run"])) == trained
    assert set(table["dataset"]) == {"mnist_embedded"} and set(table["variant"]) != {"-"}
    summary = summary_table(table, ["eval_global_code_svm_linear"])
    assert len(summary) == 1 and summary.loc[0, "n_runs"] == 2
    assert summary.loc[0, "seeds"] == "7,8"
    assert summary.loc[0, "eval_global_code_svm_linear_mean"] == 0.7
