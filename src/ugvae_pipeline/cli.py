"""The project's ``kedro run`` (Kedro takes a project's ``cli.py`` ``run`` command for ``kedro
run`` and for ``python -m ugvae_pipeline``): Kedro's own command, with its options, and

- a failure the project explains in its message (a bad parameter, a missing input, a diverged
  loss, an unreadable file: :data:`EXPLAINED`) prints that message alone and exits 1; its
  traceback goes to the log file (``info.log`` in the project, ``conf/logging.yml``), and to
  the terminal too with ``--verbose``. Any other error keeps Python's full traceback;
- SIGTERM or Ctrl-C prints what it stopped and exits with 128 + the signal's number (143 for
  SIGTERM, 130 for Ctrl-C), as a shell reports a process that signal ended.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run
from kedro.io import DatasetError

from ugvae_pipeline.training.preemption import Interrupted

# Errors whose message says what is wrong and what to do (what the project raises for bad
# input); a DatasetError carries such a message from a dataset's load or save.
EXPLAINED = (ValueError, FloatingPointError, FileNotFoundError, DatasetError)

# conf/logging.yml sends this logger to the log file only
traceback_log = logging.getLogger("ugvae_pipeline.cli.traceback")


@click.group(name="ugvae_pipeline")
def cli() -> None:
    """Commands of the ugvae_pipeline project."""


class RunFailed(click.ClickException):
    """A run stopped by an :data:`EXPLAINED` error: its message, and where its traceback is."""

    def show(self, file: Any = None) -> None:
        click.secho(f"Error: {self.message}", fg="red", err=True)
        click.secho(
            "(the traceback: kedro run --verbose, or the log file info.log)", dim=True, err=True
        )


def _run(verbose: bool, **kwargs: Any) -> Any:
    try:
        return kedro_run.callback(**kwargs)
    except Interrupted as interrupt:
        traceback_log.warning("kedro run stopped: %s", interrupt, exc_info=True)
        click.secho(f"Stopped: {interrupt}", fg="yellow", err=True)
        raise click.exceptions.Exit(128 + interrupt.signum) from None
    except EXPLAINED as error:
        traceback_log.error("kedro run failed: %s", error, exc_info=True)
        if verbose:
            click.echo(traceback.format_exc(), err=True)
        raise RunFailed(str(error)) from error


run = click.Command(
    name="run",
    callback=_run,
    params=[
        *kedro_run.params,
        click.Option(
            ["--verbose", "-v"],
            is_flag=True,
            help="On a failure, print the traceback too (the log file info.log has it anyway).",
        ),
    ],
    help=kedro_run.help,
    short_help=kedro_run.short_help,
)
cli.add_command(run)
