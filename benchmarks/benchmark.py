"""Training-step benchmark: this UG-VAE against a plain-VAE floor and the official-style anchor.

    python -m benchmarks.benchmark [--device cpu] [--quick] [--output PATH] ...

In one process, on the same random images and device, it times full training steps
(forward + backward + Adam step) of three models per architecture and groups-per-step:

- ``ugvae``: :class:`~ugvae_pipeline.models.UGVAE`, the vectorised model trained here;
- ``plain_vae`` (the floor): the identical encoder and decoder with a N(0, I) prior on z and
  no global machinery (no β, no mixture, no prior networks);
- ``anchor``: :class:`benchmarks.reference.LoopUGVAE`, UG-VAE written the way the
  official code is (loops over groups, prior networks, KL components and images).

Measurements are interleaved (each round runs a block of steps of every model, in a rotating
order) and the median per-step time over rounds is reported, so load from other processes
hits all three alike. One row per (architecture, groups per step, model) is written to a CSV
table, by default ``data/08_reporting/benchmark/<timestamp>.csv`` (never overwritten).
See ``docs/benchmark.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import logging
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from benchmarks.reference import LoopUGVAE
from ugvae_pipeline.models import UGVAE, UGVAEConfig
from ugvae_pipeline.models.architectures import ARCHITECTURES, FEATURE_DIM
from ugvae_pipeline.training.device import autocast_dtype, make_optimizer, resolve_device

log = logging.getLogger(__name__)

# Official settings (docs/model.md §6): MNIST for mlp28; CelebA (train default) for conv64.
OFFICIAL_CONFIGS: dict[str, UGVAEConfig] = {
    "mlp28": UGVAEConfig(
        "mlp28", channels=1, image_size=28, dim_z=10, dim_beta=20, n_components=10
    ),
    "conv64": UGVAEConfig(
        "conv64", channels=3, image_size=64, dim_z=20, dim_beta=20, n_components=20
    ),
}
MODELS = ("ugvae", "plain_vae", "anchor")
COMPILED_MODELS = (
    "ugvae",
    "plain_vae",
)  # --compile: the anchor stays eager, as the official code runs
COLUMNS = [
    "architecture",
    "groups_per_step",
    "group_size",
    "images_per_step",
    "model",
    "device",
    "precision",
    "compiled",
    "threads",
    "rounds",
    "steps_per_round",
    "step_ms_median",
    "step_ms_min",
    "step_ms_max",
    "images_per_second",
    "time_vs_floor",
    "speedup_vs_anchor",
    "peak_memory_mb",
    "peak_memory_kind",
    "state_memory_mb",
    "kernel_time_fraction",
]
DEFAULT_DIR = Path("data/08_reporting/benchmark")
LEARNING_RATE = 5e-3  # official


class PlainVAE(nn.Module):
    """The floor: UG-VAE's encoder and decoder with a N(0, I) prior on z and nothing global.

    Takes the same groups ``[G, B, C, H, W]`` and returns the negative ELBO per image.
    """

    def __init__(self, config: UGVAEConfig):
        super().__init__()
        self.config = config
        arch = ARCHITECTURES[config.architecture]
        self.pre_encoder = arch.build_encoder(config.channels)
        self.local_encoder = nn.Linear(FEATURE_DIM, 2 * config.dim_z)
        self.decoder = arch.build_decoder(config.dim_z, config.channels)

    def forward(self, x: Tensor) -> Tensor:
        images = x.flatten(0, 1)
        mean, log_var = self.local_encoder(self.pre_encoder(images)).chunk(2, dim=-1)
        z = torch.addcmul(mean, torch.randn_like(mean), torch.exp(0.5 * log_var))
        reconstruction = self.decoder(z)
        n, d = images.shape[0], images[0].numel()
        sq = F.mse_loss(reconstruction.float(), images.float(), reduction="sum")
        neg_log_lik = sq / (2 * self.config.var_x * n) + 0.5 * d * math.log(
            2 * math.pi * self.config.var_x
        )
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum() / n
        return neg_log_lik + kl


def _loss_of(output) -> Tensor:
    """The scalar loss of any of the three models' outputs."""
    if isinstance(output, Tensor):
        return output
    terms = getattr(output, "terms", output)
    return terms.loss


def build_model(name: str, config: UGVAEConfig) -> nn.Module:
    if name == "ugvae":
        return UGVAE(config)
    if name == "plain_vae":
        return PlainVAE(config)
    if name == "anchor":
        return LoopUGVAE(config)
    raise ValueError(f"unknown model {name!r}; choose from {MODELS}")


def make_step(
    model: nn.Module, x: Tensor, device: torch.device, dtype: torch.dtype | None
) -> Callable[[], Tensor]:
    """One full training step of ``model`` on ``x``: forward, backward, Adam."""
    optimizer = make_optimizer(model.parameters(), LEARNING_RATE, device)
    autocast = (
        (lambda: torch.autocast(device_type=device.type, dtype=dtype))
        if dtype is not None
        else contextlib.nullcontext
    )

    def step() -> Tensor:
        with autocast():
            loss = _loss_of(model(x))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    return step


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- peak memory -----------------------------------------------------------------------------
def _proc_status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_cpu_peak() -> int | None:
    """Return freed heap to the OS and reset the RSS high-water mark; the RSS after, in kB."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
    except OSError:
        return None
    return _proc_status_kb("VmRSS")


def measure_peak_memory(step: Callable[[], Tensor], device: torch.device) -> tuple[float, str]:
    """Extra memory one step needs above what is allocated before it, in MiB, and its kind.

    CUDA: ``torch.cuda.max_memory_allocated`` during the step minus the allocation before.
    CPU (Linux): the process RSS high-water mark (``VmHWM``) during the step minus the RSS
    before it, after returning freed heap to the OS. NaN where neither is available.
    """
    if device.type == "cuda":
        _synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        step()
        _synchronize(device)
        return (
            torch.cuda.max_memory_allocated(device) - before
        ) / 2**20, "cuda_max_allocated_delta"
    before = _reset_cpu_peak()
    if before is None:
        step()
        return float("nan"), "unavailable"
    step()
    return (_proc_status_kb("VmHWM") - before) / 1024, "cpu_rss_hwm_delta"


def state_memory_mb(model: nn.Module) -> float:
    """Parameters, gradients and the two Adam moments, in MiB."""
    return 4 * sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20


def kernel_time_fraction(
    step: Callable[[], Tensor],
    device: torch.device,
    step_seconds: float,
    budget_seconds: float = 0.3,
) -> float:
    """Share of a few training steps' wall time in which the GPU ran kernels; NaN off CUDA.

    From ``torch.profiler`` (device activity only): the summed duration of the device's
    kernels over the wall-clock time of the profiled steps, as many as fit in about
    ``budget_seconds`` (at least 2, at most 10). Memory copies and sets are left out, and so
    are user-annotation spans (``record_function`` ranges such as the optimizer step or a
    compiled graph's call), which cover kernels already counted. The profiler's own overhead
    lengthens the wall time a little, so this is a lower bound.
    """
    if device.type != "cuda":
        return math.nan
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    steps = max(2, min(10, round(budget_seconds / max(step_seconds, 1e-6))))
    _synchronize(device)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        _synchronize(device)
        wall = time.perf_counter() - start
    kernel_us = sum(
        event.self_device_time_total
        for event in prof.key_averages()
        if event.device_type == DeviceType.CUDA
        and not getattr(event, "is_user_annotation", False)
        and not event.key.startswith(("Memcpy", "Memset"))
    )
    return kernel_us / 1e6 / wall


# -- timing ----------------------------------------------------------------------------------
@dataclass
class Timing:
    median_ms: float
    min_ms: float
    max_ms: float
    rounds: int
    steps_per_round: int


def time_interleaved(
    steps: dict[str, Callable[[], Tensor]],
    device: torch.device,
    warmup: int,
    repeat: int,
    round_seconds: float = 0.05,
) -> dict[str, Timing]:
    """Median per-step time of each step function, measured in interleaved rounds.

    After ``warmup`` steps of each, ``repeat`` rounds each run a block of steps of every
    function in a rotating order; each function's block lasts about ``round_seconds`` (at
    least one step, at most 50), long enough that timer and synchronisation overheads do not
    matter, and a slow function does not multiply the run's length.
    """
    names = list(steps)
    estimate = {}
    for name in names:
        for _ in range(max(warmup, 1)):
            _synchronize(device)
            start = time.perf_counter()
            steps[name]()
            _synchronize(device)
            estimate[name] = time.perf_counter() - start
    per_round = {
        name: max(1, min(50, round(round_seconds / max(estimate[name], 1e-6)))) for name in names
    }
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeat):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            _synchronize(device)
            start = time.perf_counter()
            for _ in range(per_round[name]):
                steps[name]()
            _synchronize(device)
            samples[name].append((time.perf_counter() - start) / per_round[name] * 1e3)
    return {
        name: Timing(statistics.median(v), min(v), max(v), repeat, per_round[name])
        for name, v in samples.items()
    }


def benchmark_config(
    architecture: str,
    groups_per_step: int,
    group_size: int,
    device: torch.device,
    dtype: torch.dtype | None,
    warmup: int,
    repeat: int,
    models: tuple[str, ...] = MODELS,
    seed: int = 1,
    round_seconds: float = 0.05,
    compile_models: bool = False,
) -> list[dict]:
    """Rows of the table for one architecture and number of groups per step.

    With ``compile_models``, ``ugvae`` and ``plain_vae`` run through ``torch.compile`` (as
    ``train.compile: true`` does); the anchor stays eager, as the official code runs.
    """
    config = OFFICIAL_CONFIGS[architecture]
    generator = torch.Generator().manual_seed(seed)
    shape = (groups_per_step, group_size, config.channels, config.image_size, config.image_size)
    x = torch.rand(shape, generator=generator).to(device)
    built, steps, compiled = {}, {}, {}
    for name in models:
        torch.manual_seed(seed)
        model = build_model(name, config).to(device)
        if device.type == "cuda" and architecture == "conv64":
            model = model.to(memory_format=torch.channels_last)
        model.train()
        built[name] = model
        compiled[name] = compile_models and name in COMPILED_MODELS
        steps[name] = make_step(torch.compile(model) if compiled[name] else model, x, device, dtype)
        if compiled[name]:  # compile outside the timed and warm-up steps
            start = time.perf_counter()
            steps[name]()
            log.info(
                "%s %s G=%d compiled in %.1f s",
                architecture,
                name,
                groups_per_step,
                time.perf_counter() - start,
            )
    timings = time_interleaved(steps, device, warmup, repeat, round_seconds)
    memory = {name: measure_peak_memory(steps[name], device) for name in models}
    kernel_share = {
        name: kernel_time_fraction(steps[name], device, timings[name].median_ms / 1e3)
        for name in models
    }
    images = groups_per_step * group_size
    rows = []
    for name in models:
        t = timings[name]
        row = {
            "architecture": architecture,
            "groups_per_step": groups_per_step,
            "group_size": group_size,
            "images_per_step": images,
            "model": name,
            "device": str(device),
            "precision": "fp32" if dtype is None else str(dtype).replace("torch.", ""),
            "compiled": compiled[name],
            "threads": torch.get_num_threads(),
            "rounds": t.rounds,
            "steps_per_round": t.steps_per_round,
            "step_ms_median": t.median_ms,
            "step_ms_min": t.min_ms,
            "step_ms_max": t.max_ms,
            "images_per_second": images / (t.median_ms / 1e3),
            "time_vs_floor": (
                t.median_ms / timings["plain_vae"].median_ms if "plain_vae" in timings else math.nan
            ),
            "speedup_vs_anchor": (
                timings["anchor"].median_ms / t.median_ms if "anchor" in timings else math.nan
            ),
            "peak_memory_mb": memory[name][0],
            "peak_memory_kind": memory[name][1],
            "state_memory_mb": state_memory_mb(built[name]),
            "kernel_time_fraction": kernel_share[name],
        }
        rows.append(row)
    return rows


def default_output() -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H.%M.%S.%fZ")
    return DEFAULT_DIR / f"{stamp}.csv"


def _csv_list(kind: Callable[[str], object]) -> Callable[[str], list]:
    def parse(text: str) -> list:
        values = [kind(v) for v in text.split(",") if v.strip()]
        if not values:
            raise argparse.ArgumentTypeError("expected a comma-separated list")
        return values

    return parse


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.benchmark",
        description="Time UG-VAE training steps against a plain-VAE floor and a loop-based anchor.",
    )
    parser.add_argument(
        "--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)"
    )
    parser.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "bf16"),
        help="auto: bf16 autocast on a CUDA device that supports it, else fp32",
    )
    parser.add_argument("--warmup", type=_positive_int, default=3, help="untimed steps per model")
    parser.add_argument("--repeat", type=_positive_int, default=15, help="timed rounds per model")
    parser.add_argument(
        "--architectures",
        type=_csv_list(str),
        default=["mlp28", "conv64"],
        help="comma-separated, from " + ", ".join(OFFICIAL_CONFIGS),
    )
    parser.add_argument(
        "--groups-per-step", type=_csv_list(int), default=[1, 8], help="comma-separated G values"
    )
    parser.add_argument("--group-size", type=_positive_int, default=128, help="B (official 128)")
    parser.add_argument(
        "--models",
        type=_csv_list(str),
        default=list(MODELS),
        help="comma-separated, from " + ", ".join(MODELS),
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the ugvae and plain_vae models (as train.compile: true); the anchor stays eager",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"CSV file to write (must not exist); default {DEFAULT_DIR}/<timestamp>.csv",
    )
    parser.add_argument("--mlflow", action="store_true", help="also log the table to MLflow")
    parser.add_argument(
        "--mlflow-tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db"),
    )
    parser.add_argument("--mlflow-experiment", default="ugvae_benchmark")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: groups of 8, G in {1, 2}, 1 warm-up step and 2 rounds of 1 step",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.group_size, args.groups_per_step, args.warmup, args.repeat = 8, [1, 2], 1, 2
    args.round_seconds = 0.0 if args.quick else 0.05
    for arch in args.architectures:
        if arch not in OFFICIAL_CONFIGS:
            parser.error(f"unknown architecture {arch!r}; choose from {sorted(OFFICIAL_CONFIGS)}")
    for model in args.models:
        if model not in MODELS:
            parser.error(f"unknown model {model!r}; choose from {MODELS}")
    if any(g < 1 for g in args.groups_per_step):
        parser.error("--groups-per-step values must be >= 1")
    return args


def run(args: argparse.Namespace) -> tuple[pd.DataFrame, Path]:
    """Benchmark every configuration, write the CSV table; return it and its path.

    ``--threads`` sets torch's thread count for the benchmark only: the caller's is put back.
    """
    threads = torch.get_num_threads()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        return _run(args)
    finally:
        torch.set_num_threads(threads)


def _run(args: argparse.Namespace) -> tuple[pd.DataFrame, Path]:
    device = resolve_device(args.device)
    dtype = autocast_dtype(args.precision, device)
    output = args.output or default_output()
    if output.exists():
        raise FileExistsError(f"{output} exists; the benchmark never overwrites a table")
    output.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for architecture in args.architectures:
        for groups in args.groups_per_step:
            rows += benchmark_config(
                architecture,
                groups,
                args.group_size,
                device,
                dtype,
                args.warmup,
                args.repeat,
                tuple(args.models),
                args.seed,
                args.round_seconds,
                args.compile,
            )
            table = pd.DataFrame(rows, columns=COLUMNS)
            table.to_csv(
                output, index=False
            )  # after each configuration: a stopped run keeps its rows
    if args.mlflow:
        log_to_mlflow(table, output, args)
    return table, output


def log_to_mlflow(table: pd.DataFrame, output: Path, args: argparse.Namespace) -> None:
    import mlflow

    mlflow.set_tracking_uri(args.mlflow_tracking_uri)
    mlflow.set_experiment(args.mlflow_experiment)
    with mlflow.start_run(run_name="benchmark"):
        first = table.iloc[0]
        mlflow.log_params(
            {
                "device": first["device"],
                "precision": first["precision"],
                "threads": int(first["threads"]),
                "group_size": args.group_size,
                "compile": args.compile,
                "warmup": args.warmup,
                "repeat": args.repeat,
                "torch": torch.__version__,
            }
        )
        for row in table.itertuples():
            prefix = f"{row.architecture}.g{row.groups_per_step}.{row.model}"
            for column in (
                "images_per_second",
                "step_ms_median",
                "time_vs_floor",
                "speedup_vs_anchor",
                "peak_memory_mb",
                "kernel_time_fraction",
            ):
                value = float(getattr(row, column))
                if math.isfinite(value):
                    mlflow.log_metric(f"{prefix}.{column}", value)
        mlflow.log_artifact(str(output), artifact_path="benchmark")


def format_table(table: pd.DataFrame) -> str:
    columns = [
        "architecture",
        "groups_per_step",
        "model",
        "step_ms_median",
        "images_per_second",
        "time_vs_floor",
        "speedup_vs_anchor",
        "peak_memory_mb",
    ]
    if table["kernel_time_fraction"].notna().any():  # on CUDA
        columns.append("kernel_time_fraction")
    shown = table[columns]
    return shown.to_string(index=False, float_format=lambda v: f"{v:.2f}")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    table, output = run(args)
    first = table.iloc[0]
    print(
        f"device {first['device']}, {first['precision']}, {int(first['threads'])} thread(s), "
        f"{'torch.compile (anchor eager)' if args.compile else 'eager'}, "
        f"groups of {args.group_size}; peak memory = {first['peak_memory_kind']} (MiB)"
    )
    print(format_table(table))
    print(f"table written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
