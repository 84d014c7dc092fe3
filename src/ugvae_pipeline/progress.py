"""One progress display for long jobs (ingestion, training, extraction).

A tqdm bar when stderr is a terminal; otherwise an INFO log line every ``log_every`` items
with the rate and the estimated time left, so progress shows in CI and in log files too.
"""

from __future__ import annotations

import logging
import sys
import time

MODES = ("auto", "bar", "log", "off")

_log = logging.getLogger(__name__)


def progress_mode(value: object, name: str = "progress") -> str:
    """A progress mode from a parameter ``name``; YAML 1.1 reads an unquoted ``off`` as false."""
    if value is False:
        value = "off"
    if value not in MODES:
        raise ValueError(f"{name}={value!r} is unknown; use one of {MODES}")
    return value


class Progress:
    """Progress of ``total`` items of ``unit`` (e.g. ``images``, ``steps``, ``groups``).

    Args:
        total: items in the job.
        desc: what the job is, the prefix of every line (``train``, ``extract``, ``celeba``).
        unit: the items' name, plural.
        mode: ``auto`` (a bar on a terminal, log lines otherwise), ``bar``, ``log`` or ``off``.
        log_every: items between log lines (default: every 10 % of ``total``).
        logger: the logger of the module doing the work, so its lines are attributed to it.
    """

    def __init__(
        self,
        total: int,
        desc: str,
        unit: str = "items",
        mode: str = "auto",
        log_every: int | None = None,
        logger: logging.Logger | None = None,
    ):
        mode = progress_mode(mode)
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "log"
        self.total, self.desc, self.unit, self.mode = total, desc, unit, mode
        self.log_every = max(log_every or total // 10, 1)
        self.log = logger or _log
        self.done = 0
        self.start = time.perf_counter()
        self.bar = None
        if mode == "bar":
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit=unit, desc=desc, dynamic_ncols=True)

    def update(self, n: int = 1, **postfix) -> None:
        """``n`` more items done; ``postfix`` (e.g. ``loss=1.2``) is shown beside the count."""
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix(**postfix)
        elif self.mode == "log" and (
            self.done == self.total
            or self.done // self.log_every > (self.done - n) // self.log_every
        ):
            self.log.info("%s", self.line(**postfix))

    def line(self, **postfix) -> str:
        """``desc: done/total unit (rate unit/s, ETA s)`` and the postfix, as logged."""
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        extra = "".join(f" {key} {value}" for key, value in postfix.items())
        return (
            f"{self.desc}: {self.done}/{self.total} {self.unit} "
            f"({rate:.1f} {self.unit}/s, ETA {_duration(eta)}){extra}"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TrainingProgress(Progress):
    """Optimisation steps of a training run, with the epoch and the latest loss."""

    def __init__(self, mode: str, total: int, log_every: int, logger: logging.Logger | None = None):
        logger = logger or logging.getLogger("ugvae_pipeline.training.trainer")
        super().__init__(total, "train", "steps", mode, log_every, logger)

    def step(self, done: int, epoch: int, loss: float | None) -> None:
        """Step ``done`` of ``total`` finished in ``epoch``; ``loss`` when it was synced."""
        postfix = {"epoch": epoch}
        if loss is not None:
            postfix["loss"] = f"{loss:.3f}"
        self.update(done - self.done, **postfix)


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "?"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
