"""Project pipelines."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from ugvae_pipeline.pipelines import grouping, ingestion, training


def register_pipelines() -> dict[str, Pipeline]:
    """Stage pipelines, the ``train`` chain, and ``__default__`` = everything.

    Also: ``train_domain_alignment`` (ingestion → mixed-domain training groups → training; use
    with ``data.source=mixed``) and one pipeline per structured evaluation grouping
    (``class_groups``, ``attribute_groups``, ``domain_groups``), run on the ingested metadata.

    ``train`` = ingestion → grouping → training, so ``kedro run --pipeline=train`` works on a
    fresh clone. Stages are listed here rather than found with ``find_pipelines``: Kedro 1.7
    loads only the folders named on the command line, which would lose composite names.
    """
    stages = {
        "ingestion": ingestion.create_pipeline(),
        "grouping": grouping.create_pipeline(),
        "training": training.create_pipeline(),
    }
    pipelines = dict(stages)
    pipelines["train"] = stages["ingestion"] + stages["grouping"] + stages["training"]
    pipelines["train_domain_alignment"] = (
        stages["ingestion"] + grouping.create_domain_training_pipeline() + stages["training"]
    )
    pipelines.update(grouping.create_structured_pipelines())
    pipelines["__default__"] = sum(stages.values(), Pipeline([]))
    return pipelines
