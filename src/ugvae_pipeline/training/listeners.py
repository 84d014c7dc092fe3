"""Epoch listeners: code that drives training from outside (a hyper-parameter search) sees each
epoch's history row as soon as the trainer writes it, on rank 0, between epochs.

A listener is a callable taking the row (a copy: ``epoch``, the ``train_*`` and ``heldout_*``
terms, and the monitor's ``val_*`` scores on the epochs it scored). An exception it raises
stops the training there and leaves the node with that exception (a search prunes a trial so).
Listeners belong to the process that registered them, for the span of :func:`epoch_listener`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

_LISTENERS: list[Callable[[dict[str, Any]], None]] = []


@contextlib.contextmanager
def epoch_listener(callback: Callable[[dict[str, Any]], None]) -> Iterator[None]:
    """Call ``callback`` with every epoch's row of any training run inside the block."""
    _LISTENERS.append(callback)
    try:
        yield
    finally:
        _LISTENERS.remove(callback)


def notify(row: dict[str, Any]) -> None:
    """Hand an epoch's row to every listener (the trainer calls this on rank 0)."""
    for callback in list(_LISTENERS):
        callback(dict(row))
