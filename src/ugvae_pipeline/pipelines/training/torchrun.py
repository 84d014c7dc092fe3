"""``torchrun`` entry point: the training pipeline over every launched process, tracked like
``kedro run --pipelines=training``.

    torchrun --standalone --nproc_per_node=2 -m ugvae_pipeline.pipelines.training.torchrun \\
        [--env ENV] [--params "train.epochs=2"]

    # two nodes (run on each; the first node's address as the rendezvous endpoint):
    torchrun --nnodes=2 --nproc_per_node=4 --rdzv_backend=c10d --rdzv_id=ugvae \\
        --rdzv_endpoint=node0.example:29400 -m ugvae_pipeline.pipelines.training.torchrun

``--env`` and ``--params`` are parsed exactly as ``kedro run`` parses them (Kedro's own parser:
dotted keys become nested parameters), and every process checks the parameters as ``kedro
run`` does before the process group is joined, so a bad value stops every process at once.
Run it from the project root, after the ingestion and grouping pipelines (every node needs the
project's ``data/`` and the same group plan: a shared filesystem, or the same files copied).

Rank 0 runs the ``training`` pipeline in a Kedro session, as ``kedro run`` would: kedro-mlflow
opens the MLflow run with every parameter, the trainer logs per-epoch metrics, the model,
figures and report are saved and logged, hooks tag and end the run (KILLED on SIGTERM). Its
``train_model`` node trains in the process group; every other rank trains its share of each
step on the same catalog datasets and writes nothing. The MLflow store is rank 0's
``MLFLOW_TRACKING_URI`` (or ``conf/``'s ``mlflow.yml``): on several nodes, point it at one
tracking server that every node can reach. The data-parallel machinery is the core's
``ugvae_pipeline.training``; this module is the only part of it that needs Kedro.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path

import click
from kedro.framework.cli.utils import _split_params
from kedro.framework.project import pipelines, settings
from kedro.framework.startup import bootstrap_project
from torch import distributed as dist

from ugvae_pipeline.hooks import check_pipeline_parameters
from ugvae_pipeline.pipelines.training.nodes import train_model
from ugvae_pipeline.training.device import resolve_device
from ugvae_pipeline.training.distributed import backend_for

log = logging.getLogger(__name__)

PIPELINE = "training"
FINISH_TIMEOUT = timedelta(hours=6)  # how long the other ranks wait for rank 0's logging


@click.command(name="torchrun -m ugvae_pipeline.pipelines.training.torchrun")
@click.option("--env", "-e", default=None, help="Kedro configuration environment, as in kedro run")
@click.option(
    "--params", default="", callback=_split_params, help='as in kedro run, e.g. "train.epochs=2"'
)
def main(env: str | None, params: dict) -> None:
    project = Path.cwd()
    bootstrap_project(project)
    rank = int(os.environ.get("RANK", "0"))
    # the project's session class, as kedro run's: a SIGTERM ends the run KILLED (session.py)
    with settings.SESSION_CLASS.create(
        project_path=project, env=env, runtime_params=params or None
    ) as session:
        catalog = session.load_context().catalog
        check_pipeline_parameters(pipelines[PIPELINE], catalog)
        train_params = catalog.load("params:train")
        dist.init_process_group(backend_for(resolve_device(train_params.get("device", "auto"))))
        # rank 0 saves and logs for minutes after training (figures, the MLflow model): the
        # others wait on a Gloo group with a long timeout, not NCCL's 10-minute watchdog
        finish = dist.new_group(backend="gloo", timeout=FINISH_TIMEOUT)
        try:
            if rank == 0:
                session.run(pipeline_names=[PIPELINE])
            else:
                logging.basicConfig(level=logging.WARNING)
                train_model(
                    catalog.load("images"),
                    catalog.load("train_groups"),
                    catalog.load("heldout_groups"),
                    catalog.load("params:model"),
                    train_params,
                )
            dist.barrier(group=finish)  # rank 0 logs and saves while the others wait
        finally:
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
