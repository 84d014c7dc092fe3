"""``kedro run --pipelines=train`` with the validation monitor and the choice of the epoch kept:
the scores reach the MLflow store with the epoch as step, beside the held-out loss; the chosen
epoch is recorded; validation groups that cannot be built turn the monitor off, or stop a run
that would choose its epoch on them before it trains."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from PIL import Image

from tests.conftest import cli_params, kedro_cli, run_kedro

TINY = {
    "train": {
        "epochs": 3,
        "group_size": 64,
        "groups_per_step": 4,  # 13 steps per epoch
        "progress": "log",
        "monitor_every": 2,
        "monitor_groups": 5,
        "select_epoch": "heldout_loss",
    },
    "groups": {"heldout": {"n_groups": 1}, "series": {"group_size": 32}},
    "figures": {"n_groups": 1, "n_images": 8},
}


def _latest(path):
    return sorted(path.glob(f"*/{path.name}"))[-1]


def test_validation_scores_and_the_chosen_epoch_reach_mlflow(project_copy):
    kedro_cli(project_copy, "--pipelines=train", "--params", cli_params(TINY))
    data = project_copy / "data"
    history = pd.read_csv(_latest(data / "08_reporting" / "training_history.csv"))
    client = MlflowClient(f"sqlite:///{project_copy / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("ugvae_pipeline").experiment_id])

    def steps(name):
        return [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, name)]

    # scored every 2 epochs and at the last, as MLflow metrics with the epoch as step
    for name in ("global_code", "mean_local_code", "mean_mixture_probs", "mean_image"):
        for score in ("svm_linear", "kmeans_ari"):
            column = f"val_{name}_{score}"
            assert steps(column) == [
                (2, pytest.approx(history[column][1])),
                (3, pytest.approx(history[column][2])),
            ]
    assert [s for s, _ in steps("val_seconds")] == [2, 3]
    assert [s for s, _ in steps("heldout_loss")] == [1, 2, 3]  # beside the held-out loss

    # the epoch kept: the lowest held-out loss, recorded in the history, MLflow and the report
    best = int(history.loc[history["heldout_loss"].idxmin(), "epoch"])
    assert history.loc[history["selected"], "epoch"].tolist() == [best]
    assert steps("selected_epoch") == [(best, best)]
    report = _latest(data / "08_reporting" / "training_report.html").read_text()
    assert f"Saved model: epoch {best} (train.select_epoch=heldout_loss)" in report
    assert "Scoring the validation groups took" in report
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "figures")}
    assert "figures/validation_scores.png" in artifacts

    # the validation groups: validation images only (never a test image), 5 per series
    groups = np.load(_latest(data / "03_primary" / "validation_groups.npy"))
    metadata = pd.read_parquet(_latest(data / "02_intermediate" / "image_metadata.parquet"))
    assert groups.shape == (20, 32)
    assert set(metadata["split"].to_numpy()[groups.ravel()]) == {"validation"}


def _flat_folder(root, n=60):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for i in range(n):
        pixels = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"{i:03d}.png")
    return root


FOLDER = {
    "data": {"source": "image_folder", "image_folder": {"root": None}},
    "model": {"architecture": "conv64", "channels": 3, "image_size": 64},
    "train": {"epochs": 1, "group_size": 8, "progress": "log"},
    "groups": {"heldout": {"n_groups": 1, "group_size": 4}},
    "figures": {"n_groups": 1, "n_images": 4},
}


def test_a_folder_without_validation_groups_trains_with_the_monitor_off(project_copy, tmp_path):
    root = _flat_folder(tmp_path / "images")  # no sub-folders: no folder groups to score
    params = {**FOLDER, "data": {**FOLDER["data"], "image_folder": {"root": str(root)}}}
    refused = {**params, "train": {**params["train"], "select_epoch": "validation_svm_linear"}}
    with pytest.raises(
        ValueError,
        match=r"train.select_epoch=validation_svm_linear chooses the epoch on validation "
        r"groups, but they cannot be built from these images",
    ):
        run_kedro(project_copy, "train", refused)
    assert not (project_copy / "data" / "06_models" / "model.pt").exists()  # before training

    done = kedro_cli(project_copy, "--pipelines=train", "--params", cli_params(params))
    log = " ".join((done.stdout + done.stderr).split())  # the log wraps long lines
    assert "validation scores of the group code are off (train.monitor_every=5)" in log
    history = pd.read_csv(_latest(project_copy / "data" / "08_reporting" / "training_history.csv"))
    assert not [c for c in history.columns if c.startswith("val_")]
    assert history["selected"].tolist() == [True]
    assert _latest(project_copy / "data" / "06_models" / "model.pt").stat().st_size > 0
