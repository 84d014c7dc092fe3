"""Regenerate the README's screenshots from the code: kedro viz's DAG and MLflow's run comparison.

    .venv/bin/python scripts/screenshots.py [--out docs/images] [--keep]     (make screenshots)

In a throw-away copy of the project (conf/ without conf/local, pyproject.toml, its own data/
and mlflow.db) it

1. builds kedro viz (``kedro viz build``) and checks that the ``__default__`` pipeline it drew
   has exactly the nodes and datasets of ``register_pipelines()``, then renders the DAG in
   headless Chromium (light theme, layers, node list closed) and checks the page shows every node;
2. runs ``kedro run --pipelines=train`` twice on tiny settings with different seeds, ``dim_beta``
   and learning rates (beside the viz build), serves the store with
   ``mlflow server`` and renders its compare-runs page for the two runs, checking that both runs
   and the parameters that differ are on it.

Only when every check passed are ``kedro_viz.png`` and ``mlflow_compare_runs.png`` written to
``--out``, so a stale or broken picture is never published. Chromium is driven as the UI tests
drive it (``tests/ui/browser.py``; ``make browser`` installs it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:  # run as a script: tests/ holds the browser helpers
    sys.path.insert(0, str(PROJECT_ROOT))

from tests.conftest import cli_params, mlflow_server_process  # noqa: E402
from tests.ui.browser import (  # noqa: E402
    chromium,
    proxy_origin,
    render,
    serve_folder,
    storage_page,
)

# Two tiny `train` runs that differ where a comparison should show it.
TINY = {
    "train": {"epochs": 1, "group_size": 32, "progress": "log"},
    "groups": {"heldout": {"n_groups": 1, "group_size": 32}},
    "figures": {"n_groups": 1, "n_images": 8},
}
RUNS = [  # in train.seed order, as the comparison lists them
    {"train": {"seed": 1, "learning_rate": 0.005}, "model": {"dim_beta": 6}},
    {"train": {"seed": 2, "learning_rate": 0.002}, "model": {"dim_beta": 4}},
]
COMPARED = ("train.seed", "train.learning_rate", "model.dim_beta")
EXPERIMENT = "ugvae_pipeline"
# The DAG at twice the pixels of its window: the whole graph fits, its labels stay sharp.
VIZ_SIZE, VIZ_SCALE, MLFLOW_SIZE = "1700,1100", 2.0, "1600,1200"
# kedro viz as a returning user sees it: no feature tour, light theme, the code's own names,
# the node list and the mini-map closed so the DAG takes the width.
VIZ_STORAGE = {
    "KedroViz": {
        "showFeatureHints": False,
        "theme": "light",
        "isPrettyName": False,
        "visible": {"sidebar": False, "miniMap": False},
    }
}
# The MLflow UI opens its assistant panel on a first visit and starts in the GenAI view;
# a returning user of this project has closed the one and chosen "Model training".
MLFLOW_STORAGE = {
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": True,
    "mlflow.assistant.panelOpen_v1": False,
    "mlflow.workflowType_v1": "machine_learning",
}
ASSISTANT_PANEL = "Ask questions about your experiments"  # the open panel's greeting
ENV = {"KEDRO_DISABLE_TELEMETRY": "true", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}


class ScreenshotError(RuntimeError):
    """A check failed: the picture would not show what the code is."""


def copy_project(root: Path) -> None:
    """conf/ (less the user's conf/local), pyproject.toml and .telemetry, with its own store."""
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    for name in ("pyproject.toml", ".telemetry"):
        if (PROJECT_ROOT / name).exists():
            shutil.copy(PROJECT_ROOT / name, root / name)
    (root / "conf" / "local").mkdir()
    (root / "conf" / "local" / "mlflow.yml").write_text(
        f"server:\n  mlflow_tracking_uri: sqlite:///{root / 'mlflow.db'}\n"
    )
    (root / "src").mkdir()


def kedro(root: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    """``kedro *args`` started in ``root``, its output in a log file there."""
    log_path = root / f"kedro-{args[0]}-{time.monotonic_ns()}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "kedro", *args],
            cwd=root,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **ENV},
        )
    return process, log_path


def wait(started: tuple[subprocess.Popen, Path], what: str, timeout: float = 900) -> None:
    process, log_path = started
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.returncode != 0:
        tail = log_path.read_text()[-3000:]
        raise ScreenshotError(f"{what} failed (exit {process.returncode}):\n{tail}")


def expected_default() -> tuple[set[str], set[str]]:
    """The task and dataset names of ``__default__``, from the registered pipelines."""
    from ugvae_pipeline.pipeline_registry import register_pipelines

    default = register_pipelines()["__default__"]
    return {node.name for node in default.nodes}, set(default.datasets())


def check_viz_data(build: Path) -> set[str]:
    """The names ``kedro viz build`` drew for ``__default__``, checked against the code's."""
    graph = json.loads((build / "api" / "main").read_text())
    drawn = [n for n in graph["nodes"] if "__default__" in (n.get("pipelines") or [])]
    tasks = {n["name"] for n in drawn if n["type"] == "task"}
    datasets = {n["name"] for n in drawn if n["type"] in ("data", "parameters")}
    want_tasks, want_datasets = expected_default()
    for kind, got, want in (("nodes", tasks, want_tasks), ("datasets", datasets, want_datasets)):
        if got != want:
            raise ScreenshotError(
                f"kedro viz's __default__ {kind} differ from register_pipelines(): "
                f"missing {sorted(want - got)}, unexpected {sorted(got - want)}"
            )
    return tasks | {d for d in datasets if not d.startswith("params:")}


def capture_viz(root: Path, build: Path, names: set[str]) -> Path:
    (build / "ugvae-view.html").write_text(storage_page(VIZ_STORAGE, "./"))
    shot = root / "shots" / "kedro_viz.png"
    with serve_folder(build) as url:
        dom = render(
            f"{url}/ugvae-view.html", shot, budget_ms=15000, size=VIZ_SIZE, scale=VIZ_SCALE
        )
    missing = sorted(name for name in names if f">{name}<" not in dom)
    if missing:
        raise ScreenshotError(f"the rendered DAG lacks {missing}")
    layers = json.loads((build / "api" / "main").read_text())["layers"]
    if not all(f">{layer}<" in dom for layer in layers):
        raise ScreenshotError(f"the rendered DAG lacks some of the layers {layers}")
    return shot


def _api(base: str, endpoint: str, body: dict | None = None, **query) -> dict:
    url = f"{base}/api/2.0/mlflow/{endpoint}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _params(run: dict) -> dict[str, str]:
    return {p["key"]: p["value"] for p in run["data"]["params"]}


def capture_mlflow(root: Path) -> Path:
    with mlflow_server_process(f"sqlite:///{root / 'mlflow.db'}", root) as base:
        experiment = _api(base, "experiments/get-by-name", experiment_name=EXPERIMENT)
        experiment_id = experiment["experiment"]["experiment_id"]
        runs = _api(base, "runs/search", {"experiment_ids": [experiment_id]})["runs"]
        if len(runs) != 2 or {r["info"]["status"] for r in runs} != {"FINISHED"}:
            raise ScreenshotError(f"expected 2 finished runs in {EXPERIMENT}, found {len(runs)}")
        runs.sort(key=lambda run: _params(run).get("train.seed", ""))
        for run, asked in zip(runs, RUNS, strict=True):
            params = _params(run)
            for key in COMPARED:
                section, name = key.split(".")
                if params.get(key) != str(asked[section][name]):
                    raise ScreenshotError(
                        f"run {run['info']['run_name']} logged {key}={params.get(key)}"
                    )
        run_ids = [run["info"]["run_id"] for run in runs]
        query = urllib.parse.urlencode(
            {"runs": json.dumps(run_ids), "experiments": json.dumps([experiment_id])}
        )
        page = storage_page(MLFLOW_STORAGE, f"/#/compare-runs?{query}")
        shot = root / "shots" / "mlflow_compare_runs.png"
        with proxy_origin(base, {"/ugvae-view.html": page}) as url:
            dom = render(f"{url}/ugvae-view.html", shot, budget_ms=25000, size=MLFLOW_SIZE)
    expected = [*COMPARED, "heldout_loss", *(run["info"]["run_name"] for run in runs)]
    missing = [text for text in ["Comparing 2 Runs", *expected] if text not in dom]
    if missing:
        raise ScreenshotError(f"the comparison page lacks {missing}")
    if ASSISTANT_PANEL in dom:
        raise ScreenshotError("the MLflow assistant panel is open over the comparison")
    return shot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "images")
    parser.add_argument("--keep", action="store_true", help="keep the project copy, print it")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} is a file: name the folder the PNGs go to")
    chromium()  # no browser: say how to install it before any work
    began = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="ugvae-screenshots-"))
    started: dict[str, tuple[subprocess.Popen, Path]] = {}
    try:
        copy_project(root)
        # the viz build beside the runs; the runs one after the other: the second reuses the
        # first's image cache, and two trainings at once only share the same cores
        started["kedro viz build"] = kedro(root, "viz", "build")
        for params in RUNS:
            merged = {**TINY, **params, "train": {**TINY["train"], **params["train"]}}
            what = f"kedro run --pipelines=train --params {cli_params(merged)}"
            started[what] = kedro(root, *what.split()[1:])
            wait(started[what], what)
        wait(started["kedro viz build"], "kedro viz build")
        names = check_viz_data(root / "build")
        shots = [capture_viz(root, root / "build", names), capture_mlflow(root)]
        args.out.mkdir(parents=True, exist_ok=True)
        for shot in shots:
            shutil.copyfile(shot, args.out / shot.name)
            print(f"wrote {args.out / shot.name}")
        print(f"done in {time.monotonic() - began:.0f} s")
        return 0
    except (ScreenshotError, AssertionError) as error:  # a check, or the browser, failed
        print(f"screenshots: {error}; nothing written (project copy: {root})", file=sys.stderr)
        args.keep = True
        return 1
    finally:
        for process, _ in started.values():  # still running when another one failed
            if process.poll() is None:
                process.kill()
                process.wait()
        if args.keep:
            print(f"project copy kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
