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
    (tmp_path / "src").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
    return tmp_path


def run_kedro(project: Path, pipeline: str, params: dict) -> dict:
    """Run one pipeline through a real KedroSession; returns the session's run outputs."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, runtime_params=params) as session:
        return session.run(pipeline_names=[pipeline])
