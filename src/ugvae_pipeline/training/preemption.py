"""Pre-emption: SIGTERM (what SLURM and Kubernetes send before they kill a job) or Ctrl-C
during training finishes the current optimisation step, then stops at a step boundary.

While :class:`StopRequests` is active (the training loop, in the main thread), the first such
signal only records itself; after each step the trainer asks :meth:`StopRequests.agreed`,
which in a process group is a max-reduction over the processes (on a Gloo group, so a CUDA
run does not synchronise its stream for it), so every process stops after the same step even
when the signal reached only some of them. The trainer then writes a checkpoint at that step
(``train.checkpoint_on_signal``) and raises :class:`TrainingInterrupted`, an
:class:`Interrupted` (a ``BaseException``). A second signal stops at once, without finishing
the step. A signal that arrives after the last step is sent again when training ends, to the
handler in place before it. Outside the main thread no handler is installed.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import torch
from torch import distributed as dist

from ugvae_pipeline.training.device import in_process_group

log = logging.getLogger(__name__)

SIGNAL_NAMES = {signal.SIGINT: "SIGINT (Ctrl-C)", signal.SIGTERM: "SIGTERM"}
_CODES = {name: code for code, name in enumerate(SIGNAL_NAMES.values(), 1)}


class Interrupted(BaseException):
    """Work stopped by SIGTERM or Ctrl-C (SIGINT).

    A ``BaseException``, as ``KeyboardInterrupt`` is, not an ``Exception``: code that catches
    ``Exception`` to survive a failure lets it through. scikit-learn's cross-validation would
    otherwise score the interrupted fold NaN and carry on, MLflow's store would re-raise it as
    an ``MlflowException`` and Kedro's datasets as a ``DatasetError``, and the run would go on,
    or end FAILED, instead of stopping.

    Attributes:
        signal_name: ``SIGTERM`` or ``SIGINT (Ctrl-C)``.
        signum: the signal's number (a process it stops exits with ``128 + signum``).
    """

    def __init__(self, message: str, signal_name: str) -> None:
        super().__init__(message)
        self.signal_name = signal_name
        self.signum = next(int(s) for s, name in SIGNAL_NAMES.items() if name == signal_name)


class TrainingInterrupted(Interrupted):
    """Training stopped by a signal at a step boundary.

    Attributes:
        checkpoint: the checkpoint written at that step, or None.
    """

    def __init__(self, message: str, signal_name: str, checkpoint: Path | None = None) -> None:
        super().__init__(message, signal_name)
        self.checkpoint = checkpoint


def stop_group() -> dist.ProcessGroup | None:
    """The group the stop flag is reduced over: the default one when it is Gloo, else a Gloo
    group of the same processes (every process must call this, in the same order)."""
    if not in_process_group():
        return None
    return None if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")


class StopRequests:
    """Records SIGTERM and SIGINT while active, restoring the previous handlers on exit."""

    def __init__(self, group: dist.ProcessGroup | None = None) -> None:
        self.received: str | None = None
        self._signal: int | None = None
        self._group = group
        self._previous: dict = {}

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in SIGNAL_NAMES}
        return self

    def __exit__(self, exc_type, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
        if exc_type is None and self._signal is not None:
            # it came after the last step (held-out evaluation, a checkpoint): not lost, but
            # delivered again to whoever handles it now (kedro run: the run ends KILLED)
            signal.raise_signal(self._signal)

    def _handle(self, signum, frame) -> None:
        name = SIGNAL_NAMES[signal.Signals(signum)]
        if self.received is not None:
            raise TrainingInterrupted(f"{name} again: training stopped within a step", name)
        self.received, self._signal = name, signum
        log.warning("%s received: finishing the current step, then stopping", name)

    def agreed(self) -> str | None:
        """The signal any process of the group received (None: keep training)."""
        if not in_process_group():
            return self.received
        flag = torch.tensor([_CODES.get(self.received, 0)], dtype=torch.int32)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._group)
        code = int(flag.item())
        return next((name for name, c in _CODES.items() if c == code), None)
