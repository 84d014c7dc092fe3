"""SIGTERM and Ctrl-C in every kind of node, inside the node and while it saves its outputs:
each stops the run KILLED (tagged ``killed_by``) and ``kedro run`` exits with 128 + the signal.

The signal is a real one, sent at a named point (``signal_points.py``): inside the node, or in
the middle of a save (a file's bytes written but not yet renamed into place; an MLflow metrics
insert inside its transaction). In this process through the project's ``kedro run`` command
(one tiny stage run per case, on one project prepared once), and once from outside a real
``kedro run`` process.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from PIL import Image

from tests.conftest import _copy_project
from tests.pipelines.signal_points import GO_FD, READY_FD, cli_run, signal_at

# The whole chain at a size that runs in seconds: conf/local/parameters.yml of the project
PARAMETERS = """
data: {source: uci_digits}
train: {epochs: 1, group_size: 32, groups_per_step: 4, progress: "off"}
model: {dim_beta: 4}
groups:
  heldout: {n_groups: 2, group_size: 32, seed: 0}
  series: {groups_per_series: 5, group_size: 32}
  evaluation: {random: {n_groups: 5}}
figures: {n_groups: 1, n_images: 8, seed: 0}
extract: {progress: "off"}
encode: {progress: "off"}
evaluate: {local_map_images: 100, beta_effect: {max_groups: 6, images_per_group: 4}}
"""
NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT (Ctrl-C)"}
SRC = Path(__file__).resolve().parents[2] / "src"


def runs(project: Path) -> dict:
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ugvae_pipeline")
    return {r.info.run_id: r for r in client.search_runs([experiment.experiment_id])}


def versions(project: Path) -> list[str]:
    """Every saved file of every dataset, and any temporary one left behind."""
    return sorted(str(p.relative_to(project)) for p in (project / "data").rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A project after one tiny run of the whole chain (exit 0, FINISHED), with a folder of
    groups of images to encode; the cases run stages of it again, each as its own run."""
    root = tmp_path_factory.mktemp("signals")
    _copy_project(root)
    (root / "conf" / "local" / "parameters.yml").write_text(PARAMETERS)
    rng = np.random.default_rng(0)
    for group in ("a", "b"):
        (root / "own" / group).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 256, size=(28, 28), dtype=np.uint8)
            Image.fromarray(pixels, "L").save(root / "own" / group / f"{i}.png")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
        assert cli_run(root) == 0
    (run,) = runs(root).values()
    assert run.info.status == "FINISHED"
    return root


ENCODE = "--params=encode.root=own"
# where the catalog saves the files of the datasets a case interrupts the save of
FILES = {
    "image_metadata": "data/02_intermediate/image_metadata.parquet/",
    "train_groups": "data/03_primary/train_groups.npy/",
    "trained_model": "data/06_models/model.pt/",
    "global_codes": "data/07_model_output/global_codes.parquet/",
    "comparison_runs": "data/08_reporting/comparison/runs.csv/",
}

# (kind of node, pipeline, signal point, signal); a point is (kind, target): signal_points.py
CASES = [
    ("ingestion", "ingestion", ("node", "ingest_images"), signal.SIGTERM),
    ("ingestion", "ingestion", ("save", "image_metadata"), signal.SIGINT),
    ("grouping", "grouping", ("node", "build_training_groups"), signal.SIGINT),
    ("grouping", "grouping", ("save", "train_groups"), signal.SIGTERM),
    ("training", "training", ("step", 2), signal.SIGTERM),
    ("training", "training", ("save", "trained_model"), signal.SIGTERM),
    ("training", "training", ("save", "training_metrics"), signal.SIGINT),
    ("extract", "extract", ("node", "extract_codes"), signal.SIGTERM),
    ("extract", "extract", ("save", "global_codes"), signal.SIGINT),
    ("evaluate", "evaluate", ("fit", "SVC"), signal.SIGTERM),
    ("evaluate", "evaluate", ("save", "evaluation_metrics"), signal.SIGTERM),
    ("compare", "compare", ("node", "compare_runs"), signal.SIGINT),
    ("compare", "compare", ("save", "comparison_runs"), signal.SIGTERM),
    ("encode", "encode", ("node", "encode_own_groups"), signal.SIGTERM),
    ("encode", "encode", ("save", "encode_metrics"), signal.SIGINT),
]


@pytest.mark.parametrize(
    "kind, pipeline, point, sig",
    CASES,
    ids=[f"{c[0]}-{c[2][0]}-{c[2][1]}-{NAMES[c[3]].split()[0]}" for c in CASES],
)
def test_a_signal_in_any_node_or_save_kills_the_run(
    project, monkeypatch, kind, pipeline, point, sig
):
    monkeypatch.chdir(project)
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
    before, files = runs(project), versions(project)
    args = [f"--pipelines={pipeline}", *([ENCODE] if pipeline == "encode" else [])]
    with signal_at(*point, lambda: signal.raise_signal(sig)) as reached:
        status = cli_run(project, *args)
    assert reached, f"the run never reached {point}"
    assert status == 128 + sig  # 143 for SIGTERM, 130 for Ctrl-C: as a shell shows a kill
    new = [run for run_id, run in runs(project).items() if run_id not in before]
    if pipeline == "compare":  # reads the store, opens no run of its own (conf/base/mlflow.yml)
        assert new == []
    else:
        (run,) = new
        assert (run.info.status, run.data.tags.get("killed_by")) == ("KILLED", NAMES[sig])
        assert all(np.isfinite(v) for v in run.data.metrics.values())  # no NaN score
        assert "eval_global_code_svm_linear" not in run.data.metrics  # nor a score at all
    written = set(versions(project)) - set(files)
    assert not [f for f in written if ".partial-" in f], written  # no temporary file left
    if point[1] in FILES:  # the interrupted save left no new version of its file
        folder = FILES[point[1]]
        name = folder.rstrip("/").rsplit("/", 1)[1]
        assert not [f for f in written if f.startswith(folder) and f.endswith(name)], written


def test_sigterm_from_outside_during_the_evaluation_metrics_insert_kills_the_run(project):
    """The case reported: a real ``kedro run`` process, SIGTERM sent to it (``os.kill``)
    while it writes the evaluation metrics to the MLflow store."""
    before = runs(project)
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    env = {
        **os.environ,
        "PYTHONPATH": f"{SRC.parent}{os.pathsep}{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "KEDRO_DISABLE_TELEMETRY": "true",
        READY_FD: str(ready_w),
        GO_FD: str(go_r),
    }
    command = [sys.executable, "-m", "tests.pipelines.signal_points", "save", "evaluation_metrics"]
    victim = subprocess.Popen(
        [*command, "run", "--pipelines=evaluate"],
        cwd=project,
        env=env,
        pass_fds=(ready_w, go_r),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    os.close(ready_w)
    os.close(go_r)
    try:
        # the point is reached (or the process ended, closing the pipe: "" then)
        assert select.select([ready_r], [], [], 600)[0], "the run never reached the insert"
        assert os.read(ready_r, 1) == b"r", victim.communicate(timeout=60)[0][-3000:]
        victim.send_signal(signal.SIGTERM)
        os.write(go_w, b"g")
        out, _ = victim.communicate(timeout=300)
    finally:
        os.close(ready_r)
        os.close(go_w)
        if victim.poll() is None:
            victim.kill()
            victim.wait()
    assert victim.returncode == 143, out[-3000:]
    assert "Stopped: interrupted by SIGTERM during node score_global_codes" in out, out[-3000:]
    assert "Traceback" not in out
    (run,) = [r for run_id, r in runs(project).items() if run_id not in before]
    assert (run.info.status, run.data.tags["killed_by"]) == ("KILLED", "SIGTERM")
    assert "eval_global_code_svm_linear" not in run.data.metrics
