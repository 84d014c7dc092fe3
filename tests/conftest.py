"""Shared fixtures: a throw-away copy of the Kedro project with its own data and MLflow store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


# The whole chain (`kedro run`, __default__) at a size that runs in seconds on a CPU.
DEFAULT_TINY = {
    "train": {"epochs": 1, "group_size": 64, "progress": "off"},
    "groups": {
        "heldout": {"n_groups": 1, "group_size": 64},
        "series": {"groups_per_series": 10, "group_size": 64},
        "evaluation": {"random": {"n_groups": 5}},
    },
    "figures": {"n_groups": 1, "n_images": 8},
    "extract": {"progress": "off"},
    "evaluate": {"local_map_images": 200},
}


def _copy_project(root: Path) -> None:
    for name in ("conf", "pyproject.toml", ".telemetry"):
        src = PROJECT_ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    (root / "conf" / "local").mkdir(exist_ok=True)
    (root / "src").mkdir()


@pytest.fixture
def project_copy(tmp_path, monkeypatch) -> Path:
    """The project's conf/ and pyproject.toml in a temporary folder, run from there.

    Its Data Catalog writes under ``tmp_path/data`` and its MLflow store is
    ``tmp_path/mlflow.db``, so tests never touch the user's runs.
    """
    _copy_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
    return tmp_path


@pytest.fixture(scope="session")
def default_run(tmp_path_factory) -> Path:
    """A project copy after one tiny `kedro run` (``DEFAULT_TINY``); tests only read it."""
    root = tmp_path_factory.mktemp("default_run")
    _copy_project(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
        run_kedro(root, "__default__", DEFAULT_TINY)
    return root


def run_kedro(project: Path, pipeline: str, params: dict) -> dict:
    """Run one pipeline through a real KedroSession; returns the session's run outputs."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, runtime_params=params) as session:
        return session.run(pipeline_names=[pipeline])
