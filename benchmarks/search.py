"""Search throughput: trials per hour of ``python -m ugvae_pipeline.search`` by worker count.

    python -m benchmarks.search [--trials 6] [--workers 1 2] [--epochs 20]

In a throw-away copy of the project (its conf/ and pyproject.toml in a temporary folder, so
the user's data, MLflow store and conf/ are never touched), it runs one study per worker
count, each to ``--trials`` finished trials, with the shipped ``search:`` block but a space of
one cost-neutral dimension (``train.seed``), the random sampler and no pruner: every trial is
the same amount of work, the search's real trial (ingestion → grouping → training → extract →
evaluate on validation groups, ``search.params``' 20 epochs), so worker counts compare like
for like. Each worker uses one torch thread, as the command sets.

Printed as a Markdown table: finished trials, the command's wall seconds (start-up and the
end-of-study export included), trials per hour (finished trials / wall), the median trial's
seconds (Optuna's start and completion times), and the speed-up over the first worker count.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def project_copy(root: Path, trials: int, epochs: int) -> None:
    """conf/ and pyproject.toml in ``root``, the MLflow store and the study inside it, and a
    ``search:`` block whose trials all cost the same."""
    shutil.copytree(ROOT / "conf", root / "conf")
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(ROOT / name, root / name)
    (root / "src").mkdir()
    (root / "conf" / "local").mkdir(exist_ok=True)
    (root / "conf" / "local" / "mlflow.yml").write_text(
        f"server:\n  mlflow_tracking_uri: sqlite:///{root / 'mlflow.db'}\n"
    )
    path = root / "conf" / "base" / "parameters_search.yml"
    search = yaml.safe_load(path.read_text())["search"]
    search.update(
        storage=f"sqlite:///{root / 'optuna.db'}",
        n_trials=trials,
        sampler="random",
        pruner="none",
        space={"train.seed": {"low": 1, "high": 1_000_000}},
    )
    search["params"]["train.epochs"] = epochs
    path.write_text(yaml.safe_dump({"search": search}, sort_keys=False))


def measure(root: Path, workers: int) -> dict:
    import optuna

    study_name = f"throughput_{workers}w"
    command = [
        sys.executable,
        "-m",
        "ugvae_pipeline.search",
        "--workers",
        str(workers),
        "--params",
        f"search.study_name={study_name}",
    ]
    start = time.perf_counter()
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    subprocess.run(command, cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    study = optuna.load_study(study_name=study_name, storage=f"sqlite:///{root / 'optuna.db'}")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    seconds = [(t.datetime_complete - t.datetime_start).total_seconds() for t in done]
    return {
        "workers": workers,
        "trials": len(done),
        "wall_s": wall,
        "per_hour": len(done) / wall * 3600,
        "median_trial_s": statistics.median(seconds),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=6, help="finished trials per study")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=20, help="train.epochs of every trial")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ugvae-search-bench-") as tmp:
        root = Path(tmp)
        project_copy(root, args.trials, args.epochs)
        rows = [measure(root, workers) for workers in args.workers]
    first = rows[0]["per_hour"]
    print("| workers | finished trials | wall s | trials/hour | median trial s | speed-up |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['workers']} | {row['trials']} | {row['wall_s']:.0f} | {row['per_hour']:.1f} "
            f"| {row['median_trial_s']:.1f} | {row['per_hour'] / first:.2f}× |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
