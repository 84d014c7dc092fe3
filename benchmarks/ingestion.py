"""Ingestion benchmark: decoding throughput by worker count, the second run's reuse, memory.

    python experiments/celeba_fixture.py data/01_raw/celeba_bench --images 20000
    python -m benchmarks.ingestion data/01_raw/celeba_bench --sizes 5000 10000 20000 --workers 1 2

Each measurement runs in a fresh process (``--repeat`` times; the fastest is kept), as the ingestion node does: after importing the
project and torch (the post-import baseline), it ingests the first N images of the CelebA
layout (``data.celeba.limit``) into an empty image cache with ``data.workers`` processes, then
ingests again (the second run: the cache is reused). Printed as a Markdown table:

- images/s: N / the first ingestion's seconds (listing and hashing the files, decoding, writing);
  decode images/s: N / the seconds of reading the source's tables and decoding its files;
- checksums: of the first run's seconds, those computing the SHA-256 of the entry's files; of
  the second run's, those verifying them before the entry is reused;
- second run: its seconds and the bytes it wrote;
- memory: the peak, sampled every 250 ms, of this process's resident memory plus the memory of
  its decoding processes of their own (forked, they share its pages: private pages only are
  counted), above the post-import baseline.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
from pathlib import Path


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _private_mb(pid: str) -> float:
    """Pages of ``pid`` of its own (not shared with the parent it was forked from)."""
    total = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith(("Private_Clean:", "Private_Dirty:")):
                    total += int(line.split()[1])
    except OSError:  # the process ended meanwhile
        pass
    return total / 1024


class PeakMemory(threading.Thread):
    """Samples this process's RSS plus its children's private memory until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak, self._done = 0.0, threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.25):
            children = Path("/proc/self/task").glob("*/children")
            pids = [pid for path in children for pid in path.read_text().split()]
            self.peak = max(self.peak, _rss_mb() + sum(_private_mb(pid) for pid in pids))

    def stop(self) -> float:
        self._done.set()
        self.join()
        return self.peak


def measure(root: str, images: int, workers: int) -> dict:
    """One measurement in this process (call it in a fresh one)."""
    import torch  # noqa: F401  (the baseline of a kedro run, which imports it)

    from ugvae_pipeline.data.cache import ImageCache

    baseline = _rss_mb()
    sampler = PeakMemory()
    sampler.start()
    params = {"source": "celeba", "workers": workers, "celeba": {"root": root, "limit": images}}
    with tempfile.TemporaryDirectory(prefix="ugvae-ingest-bench-") as folder:
        cache = ImageCache(folder)
        built, _, first = cache.load_or_build(params)
        del built
        _, _, second = cache.load_or_build(params)
    peak = sampler.stop()
    return {
        "images": images,
        "workers": workers,
        "seconds": round(first.seconds, 2),
        "images_per_second": round(images / first.seconds, 1),
        "decode_images_per_second": round(images / first.build_seconds, 1),
        "cache_mb": round(first.bytes_written / 2**20, 1),
        "checksum_seconds": round(first.checksum_seconds, 3),
        "second_seconds": round(second.seconds, 3),
        "second_checksum_seconds": round(second.checksum_seconds, 3),
        "second_bytes": second.bytes_written,
        "second_reused": second.reused,
        "baseline_mb": round(baseline),
        "peak_above_baseline_mb": round(peak - baseline),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", help="a folder in CelebA's layout")
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000, 20000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell; the fastest is kept")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.root, args.sizes[0], args.workers[0])))
        return 0
    if not (Path(args.root) / "img_align_celeba").is_dir():
        parser.error(f"{args.root} is not in CelebA's layout; write one with {__doc__.split()[4]}")
    rows = []
    for images in args.sizes:
        for workers in args.workers:
            runs = []
            for _ in range(args.repeat):
                out = subprocess.run(
                    [sys.executable, "-m", "benchmarks.ingestion", args.root, "--one"]
                    + ["--sizes", str(images), "--workers", str(workers)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(json.dumps(runs[-1]), file=sys.stderr)
            rows.append(min(runs, key=lambda run: run["seconds"]))
    print(
        "| images | workers | s | images/s | speed-up | decode images/s | speed-up | cache MB "
        "| checksum s | 2nd run s | of which verifying s | 2nd run bytes "
        "| peak above baseline MB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    single = {r["images"]: r for r in rows if r["workers"] == 1}
    for r in rows:
        one = single.get(r["images"], r)
        print(
            f"| {r['images']:,} | {r['workers']} | {r['seconds']} | {r['images_per_second']:,.0f} "
            f"| {r['images_per_second'] / one['images_per_second']:.2f}x "
            f"| {r['decode_images_per_second']:,.0f} "
            f"| {r['decode_images_per_second'] / one['decode_images_per_second']:.2f}x "
            f"| {r['cache_mb']} | {r['checksum_seconds']} | {r['second_seconds']} "
            f"| {r['second_checksum_seconds']} | {r['second_bytes']} "
            f"| {r['peak_above_baseline_mb']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
