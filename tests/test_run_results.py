"""experiments/studies.py reads each environment's configuration as `kedro run` does."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_results():
    spec = importlib.util.spec_from_file_location("studies", ROOT / "experiments" / "studies.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_config_follows_the_project_configuration(run_results, tmp_path, monkeypatch):
    # a tracking URI from the environment (an earlier in-process run sets it) would win
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # the project's environments, with an empty conf/local (not the developer's own)
    shutil.copytree(ROOT / "conf", tmp_path / "conf", ignore=shutil.ignore_patterns("local"))
    local = tmp_path / "conf" / "local"
    local.mkdir()
    assert run_results.run_config(tmp_path, "base") == ("sqlite:///mlflow.db", "series")
    assert run_results.run_config(tmp_path, "domain_alignment") == ("sqlite:///mlflow.db", "domain")

    # conf/local overrides a plain `kedro run` (the base study), not an --env run
    (local / "mlflow.yml").write_text("server:\n  mlflow_tracking_uri: sqlite:///elsewhere.db\n")
    (local / "parameters.yml").write_text("groups:\n  evaluation:\n    strategy: class\n")
    assert run_results.run_config(tmp_path, "base") == ("sqlite:///elsewhere.db", "class")
    assert run_results.run_config(tmp_path, "domain_alignment") == ("sqlite:///mlflow.db", "domain")

    # a team's tracking server, named by the environment, wins over conf/base's SQLite store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking-server:5000")
    assert run_results.run_config(tmp_path, "domain_alignment") == (
        "http://tracking-server:5000",
        "domain",
    )
