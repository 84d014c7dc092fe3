"""Shared fixtures: a throw-away copy of the Kedro project with its own data and MLflow store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project_copy(tmp_path, monkeypatch) -> Path:
    """The project's conf/ and pyproject.toml in a temporary folder, run from there.

    Its Data Catalog writes under ``tmp_path/data`` and its MLflow store is
    ``tmp_path/mlflow.db``, so tests never touch the user's runs.
    """
    for name in ("conf", "pyproject.toml", ".telemetry"):
        src = PROJECT_ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    (tmp_path / "conf" / "local").mkdir(exist_ok=True)
    # An absolute tracking URI: MLflow caches stores by URI, and a relative sqlite:///mlflow.db
    # would keep pointing at the first test's folder.
    (tmp_path / "conf" / "local" / "mlflow.yml").write_text(
        f"server:\n  mlflow_tracking_uri: sqlite:///{tmp_path / 'mlflow.db'}\n"
    )
    (tmp_path / "src").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
    return tmp_path


def run_kedro(project: Path, pipeline: str, params: dict) -> dict:
    """Run one pipeline through a real KedroSession; returns the session's run outputs."""
    import mlflow
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    # kedro-mlflow can leave a run on MLflow's active-run stack after an in-process session;
    # a fresh session would then log into it. Each run gets its own MLflow run, as from the CLI.
    while mlflow.active_run():
        mlflow.end_run()
    bootstrap_project(project)
    with KedroSession.create(project_path=project, runtime_params=params) as session:
        return session.run(pipeline_names=[pipeline])
