"""``torchrun`` entry point: train on the Data Catalog's datasets in every launched process.

    python -m torch.distributed.run --nproc_per_node=2 -m ugvae_pipeline.pipelines.training.torchrun \\
        [--env ENV] [--params "train.epochs=2"]

``--env`` and ``--params`` are parsed exactly as ``kedro run`` parses them (Kedro's own
parser: dotted keys become nested parameters). Every process loads the images, the group plan
and the parameters from the project's catalog (run it from the project root, after the
ingestion and grouping pipelines); rank 0 alone saves ``trained_model`` and
``training_history``. The data-parallel machinery itself is the core's
``ugvae_pipeline.training.distributed``; this module is the only one that needs Kedro.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
from kedro.framework.cli.utils import _split_params
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from torch import distributed as dist

from ugvae_pipeline.pipelines.training.nodes import train_model
from ugvae_pipeline.training.device import resolve_device
from ugvae_pipeline.training.distributed import backend_for

log = logging.getLogger(__name__)


@click.command(name="python -m ugvae_pipeline.pipelines.training.torchrun")
@click.option("--env", "-e", default=None, help="Kedro configuration environment, as in kedro run")
@click.option(
    "--params", default="", callback=_split_params, help='as in kedro run, e.g. "train.epochs=2"'
)
def main(env: str | None, params: dict) -> None:
    logging.basicConfig(level=logging.INFO)
    project = Path.cwd()
    bootstrap_project(project)
    with KedroSession.create(
        project_path=project, env=env, runtime_params=params or None
    ) as session:
        catalog = session.load_context().catalog
        train_params = catalog.load("params:train")
        dist.init_process_group(backend_for(resolve_device(train_params.get("device", "auto"))))
        try:
            result = train_model(
                catalog.load("images"),
                catalog.load("train_groups"),
                catalog.load("heldout_groups"),
                catalog.load("params:model"),
                train_params,
            )
            if dist.get_rank() == 0:
                model, history = result
                catalog.save("trained_model", model)
                catalog.save("training_history", history)
                log.info("rank 0 saved trained_model and training_history")
            dist.barrier()  # nobody tears the group down while a peer is still working
        finally:
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
