"""Where a test's signal lands in a real ``kedro run``: a named point inside a node or inside
a dataset's save, reached deterministically (no sleeps).

A point is ``(kind, target)``:

- ``("node", name)``: in node ``name``, once its function has returned and before Kedro has its
  outputs (``Node.run``);
- ``("step", n)``: in training step ``n`` (counted over the run), while its loss is computed;
- ``("fit", "SVC")``: in the first SVM fit, inside scikit-learn's cross-validation (the
  evaluation's ``score_global_codes``);
- ``("save", dataset)``: in the middle of saving ``dataset``: for a file, its bytes written
  to the temporary name and not yet renamed into place (``os.replace``); for an MLflow
  metrics dataset, inside its first ``INSERT`` into the tracking store, in the transaction.

:func:`signal_at` makes ``deliver()`` run at the point, once. In the test's own process,
``deliver`` sends the signal there (``signal.raise_signal``); run as a program (``python -m
tests.pipelines.signal_points KIND TARGET kedro-args...``), this module runs ``kedro`` with
``deliver`` telling the test through a pipe that the point is reached and waiting on another
for the test to have sent the signal (from outside, with ``os.kill``).

:func:`cli_run` runs the project's ``kedro run`` command in the test's process.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow
from kedro.io import DataCatalog
from kedro.pipeline.node import Node
from sqlalchemy import event
from sqlalchemy.engine import Engine

READY_FD, GO_FD = "SIGNAL_POINT_READY_FD", "SIGNAL_POINT_GO_FD"


@contextlib.contextmanager
def signal_at(kind: str, target, deliver: Callable[[], None]) -> Iterator[list[str]]:
    """Run ``deliver()`` once, at point ``(kind, target)``, while the block runs; yields a list
    that names the point once it was reached (empty: never reached). Everything patched is
    put back on exit."""
    reached: list[str] = []

    def fire() -> None:
        if not reached:
            reached.append(f"{kind}:{target}")
            deliver()

    with contextlib.ExitStack() as undo:
        if kind == "node":
            _patch(undo, Node, "run", _after(Node.run, lambda node, *_: node.name == target, fire))
        elif kind == "step":
            from ugvae_pipeline.training import trainer

            calls = []

            def counted(*args, **kwargs):
                calls.append(1)
                return len(calls) == int(target)

            _patch(undo, trainer, "annealed_loss", _before(trainer.annealed_loss, counted, fire))
        elif kind == "fit":
            from sklearn import svm

            cls = getattr(svm, target)
            _patch(undo, cls, "fit", _before(cls.fit, lambda *_a, **_k: True, fire))
        elif kind == "save":
            _during_save(undo, target, fire)
        else:
            raise ValueError(f"unknown signal point kind {kind!r}")
        yield reached


def _during_save(undo: contextlib.ExitStack, dataset: str, fire: Callable[[], None]) -> None:
    saving: list[bool] = []
    original_save, original_replace = DataCatalog.save, os.replace

    def save(self, name, data):
        saving.append(name == dataset)
        try:
            return original_save(self, name, data)
        finally:
            saving.pop()

    def replace(src, dst, *args, **kwargs):
        if saving and saving[-1]:
            fire()  # the new version's bytes are written, under their temporary name
        return original_replace(src, dst, *args, **kwargs)

    def before_cursor_execute(conn, cursor, statement, parameters, context, executemany):
        if saving and saving[-1] and statement.lstrip().upper().startswith("INSERT"):
            fire()  # inside the MLflow store's transaction, before the row is written

    _patch(undo, DataCatalog, "save", save)
    _patch(undo, os, "replace", replace)
    event.listen(Engine, "before_cursor_execute", before_cursor_execute)
    undo.callback(event.remove, Engine, "before_cursor_execute", before_cursor_execute)


def _patch(undo: contextlib.ExitStack, owner, name: str, value) -> None:
    """Set ``owner.name`` (a module's or a class's own, or one it inherits) until ``undo``."""
    if name in vars(owner):
        undo.callback(setattr, owner, name, vars(owner)[name])
    else:
        undo.callback(delattr, owner, name)
    setattr(owner, name, value)


def _after(function, when, fire):
    def wrapper(*args, **kwargs):
        result = function(*args, **kwargs)
        if when(*args, **kwargs):
            fire()
        return result

    return wrapper


def _before(function, when, fire):
    def wrapper(*args, **kwargs):
        if when(*args, **kwargs):
            fire()
        return function(*args, **kwargs)

    return wrapper


def cli_run(project: Path, *args: str) -> int:
    """The project's ``kedro run *args`` in this process, from ``project``; its exit status.
    The environment the session changes (``PYTHONPATH``, ``PYTHONHASHSEED``) is put back.

    kedro-mlflow's hook is one object per process that remembers the last run it opened, and
    a run of an untracked pipeline (``compare``) in the same process reopens that run: each
    run here starts, as from the command line, with none."""
    from kedro.framework.startup import bootstrap_project
    from kedro_mlflow.framework.hooks.mlflow_hook import mlflow_hook

    from ugvae_pipeline.cli import run

    environment = dict(os.environ)
    while mlflow.active_run():
        mlflow.end_run()
    mlflow_hook.run_id = None
    bootstrap_project(project)
    try:
        run.main(list(args), prog_name="kedro run", standalone_mode=True)
    except SystemExit as done:
        return done.code or 0
    finally:
        while mlflow.active_run():
            mlflow.end_run()
        os.environ.clear()
        os.environ.update(environment)
    raise AssertionError("click's standalone mode always exits")


def wait_for_the_signal() -> None:
    """Tell the test this point is reached (a byte on the ready pipe), then block until it
    writes to the go pipe, which it does once it has sent the signal: a handler that raises
    ends the wait there; one that only records the signal (training's) returns after it."""
    os.write(int(os.environ[READY_FD]), b"r")
    os.read(int(os.environ[GO_FD]), 1)


def main(argv: list[str]) -> None:
    kind, target, *kedro_args = argv
    from kedro.framework.cli import main as kedro_main

    sys.argv = ["kedro", *kedro_args]
    with signal_at(kind, target, wait_for_the_signal):
        kedro_main()


if __name__ == "__main__":
    main(sys.argv[1:])
