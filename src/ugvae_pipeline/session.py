"""The project's Kedro session (``SESSION_CLASS`` in ``settings.py``): an interrupt reaches the
``on_pipeline_error`` hooks.

SIGTERM and Ctrl-C stop a run with an :class:`~ugvae_pipeline.training.preemption.Interrupted`,
a ``BaseException`` (so that no ``except Exception`` in a node's libraries swallows it: see
``training/preemption.py``). Kedro's ``KedroSession.run`` calls the ``on_pipeline_error``
hooks only for an ``Exception``, so on its own it would let the interrupt pass silently:
kedro-mlflow would not close the MLflow run, which MLflow's exit handler would then end
FINISHED. :class:`ProjectSession` hands Kedro the interrupt as an :class:`InterruptedRunError`
(an ``Exception`` holding it) where the runner returns, so every ``on_pipeline_error`` hook
runs (kedro-mlflow ends the run, ``InterruptedRunHook`` marks it KILLED), then raises the
interrupt itself to its caller.

``kedro run``, ``python -m ugvae_pipeline``, Kedro's IPython extension and the ``torchrun``
entry point create their sessions with ``settings.SESSION_CLASS``; so must any other code that
runs the project's pipelines.
"""

from __future__ import annotations

import copy
import functools
import inspect
from typing import Any

from kedro.framework.session import KedroSession
from kedro.runner import SequentialRunner

from ugvae_pipeline.training.preemption import Interrupted


class InterruptedRunError(Exception):
    """An interrupt as the ``on_pipeline_error`` hooks see it (``interrupt``: the original)."""

    def __init__(self, interrupt: Interrupted) -> None:
        super().__init__(str(interrupt))
        self.interrupt = interrupt


def interrupt_of(error: BaseException) -> Interrupted | None:
    """The interrupt ``error`` is or reports (None: not an interrupt)."""
    if isinstance(error, InterruptedRunError):
        return error.interrupt
    return error if isinstance(error, Interrupted) else None


class ProjectSession(KedroSession):
    """A ``KedroSession`` whose ``run`` passes an interrupt to the ``on_pipeline_error`` hooks
    before raising it (the module's docstring says why)."""

    def run(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        call = inspect.signature(KedroSession.run).bind(self, *args, **kwargs)
        # a copy, so the caller's runner object is left as it was
        runner = copy.copy(call.arguments.get("runner") or SequentialRunner())
        runner.run = _reporting_interrupts(runner.run)
        call.arguments["runner"] = runner
        try:
            return super().run(*call.args[1:], **call.kwargs)
        except InterruptedRunError as reported:
            raise reported.interrupt from None


def _reporting_interrupts(run):
    @functools.wraps(run)
    def reporting(*args: Any, **kwargs: Any):
        try:
            return run(*args, **kwargs)
        except Interrupted as interrupt:
            raise InterruptedRunError(interrupt) from interrupt

    return reporting
