"""The MLflow UI over two real runs: REST API contents and the run-comparison page."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

import pytest

from tests.conftest import kedro_cli, mlflow_server_process, run_kedro
from tests.ui.browser import publish, render, screenshot_path

TINY = {
    "train": {"epochs": 1, "group_size": 32, "progress": "log", "learning_rate": 0.005},
    "model": {"dim_beta": 6},
    "groups": {"heldout": {"n_groups": 1, "group_size": 32}},
    "figures": {"n_groups": 1, "n_images": 8},
}
CLI_PARAMS = (
    "train.epochs=1,train.group_size=32,train.learning_rate=0.002,train.progress=log,"
    "model.dim_beta=4,groups.heldout.n_groups=1,groups.heldout.group_size=32,"
    "figures.n_groups=1,figures.n_images=8"
)


def _get(base: str, endpoint: str, **query) -> dict:
    url = f"{base}{endpoint}?{urllib.parse.urlencode(query)}" if query else f"{base}{endpoint}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def _post(base: str, endpoint: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{base}{endpoint}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture
def mlflow_server(project_copy):
    """Two train runs with different parameters in the copy's store, served by `mlflow server`."""
    run_kedro(project_copy, "train", TINY)
    # a second run from the command line: in-process, kedro-mlflow would reuse the run id
    kedro_cli(project_copy, "--pipelines=train", "--params", CLI_PARAMS)
    with mlflow_server_process(f"sqlite:///{project_copy / 'mlflow.db'}", project_copy) as base:
        yield base


def test_mlflow_ui_compares_two_runs(mlflow_server, tmp_path):
    base = mlflow_server
    experiment = _get(
        base, "/api/2.0/mlflow/experiments/get-by-name", experiment_name="ugvae_pipeline"
    )
    experiment_id = experiment["experiment"]["experiment_id"]
    runs = _post(base, "/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment_id]})["runs"]
    assert len(runs) == 2
    by_beta = {}
    for run in runs:
        params = {p["key"]: p["value"] for p in run["data"]["params"]}
        by_beta[params["model.dim_beta"]] = run
        assert run["info"]["status"] == "FINISHED"
        metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
        assert {"train_loss", "heldout_loss", "heldout_global_kl", "images_per_second"} <= set(
            metrics
        )
        run_id = run["info"]["run_id"]
        history = _get(
            base, "/api/2.0/mlflow/metrics/get-history", run_id=run_id, metric_key="heldout_loss"
        )
        assert [m["step"] for m in history["metrics"]] == [1]
        listed = {
            folder: {
                f["path"]
                for f in _get(
                    base, "/api/2.0/mlflow/artifacts/list", run_id=run_id, path=folder
                ).get("files", [])
            }
            for folder in ("figures", "history", "report")
        }
        assert listed["figures"] == {
            "figures/loss_curves.png",
            "figures/reconstructions.png",
            "figures/component_samples.png",
            "figures/validation_scores.png",
        }
        assert listed["history"] == {"history/training_history.csv"}
        assert listed["report"] == {"report/training_report.html"}
        with urllib.request.urlopen(
            f"{base}/get-artifact?{urllib.parse.urlencode({'path': 'report/training_report.html', 'run_uuid': run_id})}",
            timeout=30,
        ) as response:
            report = response.read().decode()
        assert (
            "Training report: ugvae, trained on random groups, formed without labels" in report
            and report.count("data:image/png;base64,") == 4
        )
        assert f"<td>model.dim_beta</td>\n      <td>{params['model.dim_beta']}</td>" in report
    assert set(by_beta) == {"6", "4"}
    params = {b: {p["key"]: p["value"] for p in r["data"]["params"]} for b, r in by_beta.items()}
    assert (params["6"]["train.learning_rate"], params["4"]["train.learning_rate"]) == (
        "0.005",
        "0.002",
    )

    # the comparison page, as a user reaches it from the run list's Compare button
    run_ids = [by_beta["6"]["info"]["run_id"], by_beta["4"]["info"]["run_id"]]
    query = urllib.parse.urlencode(
        {"runs": json.dumps(run_ids), "experiments": json.dumps([experiment_id])}
    )
    shot = screenshot_path(tmp_path, "mlflow_compare_runs.png")
    dom = render(f"{base}/#/compare-runs?{query}", shot, budget_ms=25000, size="1600,1100")
    assert "Comparing 2" in dom or "Comparing two" in dom or "Run details" in dom, dom[-2000:]
    for text in ("model.dim_beta", "train.learning_rate", "heldout_loss"):
        assert text in dom, f"{text!r} not on the comparison page"
    for run in by_beta.values():
        assert run["info"]["run_name"] in dom
    assert shot.stat().st_size > 10_000
    publish(shot)
