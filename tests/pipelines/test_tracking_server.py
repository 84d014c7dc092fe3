"""A team's tracking server: MLFLOW_TRACKING_URI sends runs to a real `mlflow server`."""

from __future__ import annotations

from mlflow import MlflowClient

from tests.conftest import kedro_cli, mlflow_server_process

CLI_PARAMS = (
    "train.epochs=1,train.group_size=32,train.progress=log,model.dim_beta=4,"
    "groups.heldout.n_groups=1,groups.heldout.group_size=32,figures.n_groups=1,figures.n_images=8"
)


def test_the_train_pipeline_tracks_to_a_tracking_server_named_by_the_environment(
    project_copy, tmp_path
):
    # the copy's own store comes from conf/local; a user's project has conf/base's, which reads
    # MLFLOW_TRACKING_URI
    (project_copy / "conf" / "local" / "mlflow.yml").unlink()
    store = tmp_path / "server"
    store.mkdir()
    with mlflow_server_process(
        f"sqlite:///{store / 'server.db'}",
        store,
        "--artifacts-destination",
        str(store / "artifacts"),
    ) as base:
        kedro_cli(
            project_copy,
            "--pipelines=train",
            "--params",
            CLI_PARAMS,
            env={"MLFLOW_TRACKING_URI": base},
        )
        client = MlflowClient(base)
        experiment = client.get_experiment_by_name("ugvae_pipeline")
        (run,) = client.search_runs([experiment.experiment_id])
        assert run.info.status == "FINISHED"
        assert run.data.params["model.dim_beta"] == "4" and "heldout_loss" in run.data.metrics
        figures = {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
        assert "figures/loss_curves.png" in figures
    # the artifacts went to the server's store, and the project kept no store of its own
    assert list((store / "artifacts").rglob("loss_curves.png"))
    assert not (project_copy / "mlflow.db").exists()
