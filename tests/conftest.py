"""Shared fixtures: a throw-away copy of the Kedro project with its own data and MLflow store."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.ui.browser import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[1]


# The whole chain (`kedro run`, __default__) at a size that runs in seconds on a CPU.
DEFAULT_TINY = {
    "train": {"epochs": 1, "group_size": 64, "progress": "log"},
    "groups": {
        "heldout": {"n_groups": 1, "group_size": 64},
        "series": {"groups_per_series": 10, "group_size": 64},
        "evaluation": {"random": {"n_groups": 5}},
    },
    "figures": {"n_groups": 1, "n_images": 8},
    "extract": {"progress": "log"},
    "evaluate": {"local_map_images": 200},
}


def _copy_project(root: Path) -> None:
    for name in ("conf", "pyproject.toml", ".telemetry"):
        src = PROJECT_ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    (root / "conf" / "local").mkdir(exist_ok=True)
    # An absolute tracking URI: MLflow caches stores by URI, and a relative sqlite:///mlflow.db
    # would keep pointing at the first test's folder.
    (root / "conf" / "local" / "mlflow.yml").write_text(
        f"server:\n  mlflow_tracking_uri: sqlite:///{root / 'mlflow.db'}\n"
    )
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


def cli_params(params: dict, prefix: str = "") -> str:
    """Nested parameters as ``kedro run --params`` text: ``a.b=1,a.c=x``."""
    items = []
    for key, value in params.items():
        if isinstance(value, dict):
            items.append(cli_params(value, f"{prefix}{key}."))
        else:
            items.append(f"{prefix}{key}={value}")
    return ",".join(items)


@pytest.fixture(scope="session")
def default_run(tmp_path_factory) -> Path:
    """A project copy after one tiny `kedro run` (``DEFAULT_TINY``); tests only read it.

    Run as a subprocess, so no MLflow state of other in-process runs leaks into it.
    """
    root = tmp_path_factory.mktemp("default_run")
    _copy_project(root)
    kedro_cli(root, "--params", cli_params(DEFAULT_TINY))
    return root


def kedro_cli(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``kedro run *args`` from the command line in ``project``, as a user types it (its own
    process and MLflow run), with ``env`` added to the environment; fails the test with the
    command's stderr when it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "kedro", "run", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", **(env or {})},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


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
    try:
        with KedroSession.create(project_path=project, runtime_params=params) as session:
            return session.run(pipeline_names=[pipeline])
    finally:
        # kedro-mlflow can leave its run active in this process; the next in-process run
        # would then log into it (and into its store), so close it here.
        while mlflow.active_run():
            mlflow.end_run()


@contextlib.contextmanager
def server_process(
    command: list[str], port: int, ready: str, cwd: Path, env: dict | None = None, wait: float = 120
):
    """A real server ``command`` listening on 127.0.0.1:``port``, its output in ``cwd``; yields
    its base URL once ``ready`` (a path, e.g. ``/health``) answers within ``wait`` seconds, and
    stops it after."""
    log_path = cwd / f"server-{port}.log"
    log = open(log_path, "w")
    server = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", **(env or {})},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + wait
        while True:
            assert server.poll() is None, log_path.read_text()[-3000:]
            try:
                urllib.request.urlopen(f"{base}{ready}", timeout=5).read()
                break
            except OSError:
                assert time.monotonic() < deadline, (
                    f"{command[:5]} did not answer within {wait:.0f} s"
                )
                time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def mlflow_server_process(backend_store_uri: str, cwd: Path, *args: str):
    """A real ``mlflow server`` on 127.0.0.1 over ``backend_store_uri`` (extra ``args``, e.g.
    ``--artifacts-destination``); yields its base URL once ``/health`` answers."""
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_store_uri]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1", *args]
    return server_process(command, port, "/health", cwd)
