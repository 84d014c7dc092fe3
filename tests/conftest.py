"""Shared fixtures: a throw-away copy of the Kedro project with its own data and MLflow store."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.ui.browser import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Environment variables a library writes once per process, on first use, whichever test
# happens to trigger it: not a test's change.
LIBRARY_ENVIRONMENT = {
    "PYTEST_CURRENT_TEST",  # pytest's own: the test and phase now running
    "TORCHINDUCTOR_CACHE_DIR",  # torch.compile's cache folder, set by its first compile
    "CUBLAS_WORKSPACE_CONFIG",  # set when torch.compile's numeric passes are imported
    "_TORCHINDUCTOR_PYOBJECT_TENSOR_DATA_PTR",  # set as torch.compile loads its kernels
    "_MLFLOW_TELEMETRY_SESSION_ID",  # MLflow's, set and cleared as it turns telemetry on and off
}
# Seeds are state too: ``seed_everything`` sets these with the generators' states.
SEED_ENVIRONMENT = {"PYTHONHASHSEED"}


def _process_state() -> dict:
    """What a test may change for every later test of the process, and must put back."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in LIBRARY_ENVIRONMENT | SEED_ENVIRONMENT
    }
    return {
        "torch threads": torch.get_num_threads(),
        "SIGINT handler": signal.getsignal(signal.SIGINT),
        "SIGTERM handler": signal.getsignal(signal.SIGTERM),
        "environment": environment,
        "working directory": os.getcwd(),
    }


def _environment_change(before: dict, after: dict) -> str:
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    return ", ".join(f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in changed)


@pytest.fixture(autouse=True)
def process_state_is_restored():
    """Fail a test that leaves torch's thread count, the SIGINT/SIGTERM handlers, the
    environment or the working directory changed: every later test would run under it, and
    results would depend on the order of the tests. Use ``monkeypatch`` or try/finally.

    The seeds (python's, NumPy's and torch's generators, ``PYTHONHASHSEED``) are put back
    after every test instead: tests seed as training does, and none sees another's draws.
    """
    before = _process_state()
    seeds = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    seed_environment = {key: os.environ.get(key) for key in SEED_ENVIRONMENT}
    yield
    after = _process_state()
    random.setstate(seeds[0])
    np.random.set_state(seeds[1])
    torch.set_rng_state(seeds[2])
    for key, value in seed_environment.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    changed = [name for name in before if before[name] != after[name]]
    if not changed:
        return
    # put everything back, so that the tests after this one run as they would alone
    torch.set_num_threads(before["torch threads"])
    signal.signal(signal.SIGINT, before["SIGINT handler"])
    signal.signal(signal.SIGTERM, before["SIGTERM handler"])
    for key in after["environment"].keys() - before["environment"].keys():
        del os.environ[key]
    os.environ.update(before["environment"])
    os.chdir(before["working directory"])
    details = [
        _environment_change(before[name], after[name])
        if name == "environment"
        else f"{before[name]!r} -> {after[name]!r}"
        for name in changed
    ]
    pytest.fail(
        "the test left process-wide state changed (restore it: monkeypatch or try/finally): "
        + "; ".join(f"{name} ({detail})" for name, detail in zip(changed, details)),
        pytrace=False,
    )


# The whole chain (`kedro run`, __default__) at a size that runs in seconds on a CPU.
DEFAULT_TINY = {
    "train": {"epochs": 1, "group_size": 64, "progress": "log", "monitor_groups": 5},
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
    project: Path, *args: str, env: dict[str, str] | None = None, succeed: bool = True
) -> subprocess.CompletedProcess:
    """``kedro run *args`` from the command line in ``project``, as a user types it (its own
    process and MLflow run), with ``env`` added to the environment; fails the test with the
    command's stderr when it fails (``succeed=False``: when it does not fail)."""
    done = subprocess.run(
        [sys.executable, "-m", "kedro", "run", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", **(env or {})},
    )
    assert (done.returncode == 0) == succeed, done.stderr[-3000:]
    return done


def run_kedro(project: Path, pipeline: str, params: dict) -> dict:
    """Run one pipeline through a real Kedro session, of the project's ``SESSION_CLASS`` as
    ``kedro run`` creates (a signal then ends the run KILLED); returns its run outputs."""
    import mlflow
    from kedro.framework.project import settings
    from kedro.framework.startup import bootstrap_project

    # kedro-mlflow can leave a run on MLflow's active-run stack after an in-process session;
    # a fresh session would then log into it. Each run gets its own MLflow run, as from the CLI.
    while mlflow.active_run():
        mlflow.end_run()
    # kedro-mlflow's hook (one per process) keeps the id of the last run it opened and reopens
    # it before each node of a pipeline it does not track (compare): a new process has none
    from kedro_mlflow.framework.hooks.mlflow_hook import mlflow_hook

    mlflow_hook.run_id = None
    # the session changes the environment (bootstrap_project adds src/ to PYTHONPATH, the
    # training node seeds PYTHONHASHSEED): put back after the run, as a separate process would
    environment = dict(os.environ)
    bootstrap_project(project)
    try:
        with settings.SESSION_CLASS.create(project_path=project, runtime_params=params) as session:
            return session.run(pipeline_names=[pipeline])
    finally:
        # kedro-mlflow can leave its run active in this process; the next in-process run
        # would then log into it (and into its store), so close it here.
        while mlflow.active_run():
            mlflow.end_run()
        os.environ.clear()
        os.environ.update(environment)


@contextlib.contextmanager
def project_catalog(project: Path):
    """The Data Catalog of ``project`` as its runs see it (the latest version of each versioned
    dataset), through a real KedroSession; the environment the session changes is put back."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    environment = dict(os.environ)
    bootstrap_project(project)
    try:
        with KedroSession.create(project_path=project) as session:
            yield session.load_context().catalog
    finally:
        os.environ.clear()
        os.environ.update(environment)


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
