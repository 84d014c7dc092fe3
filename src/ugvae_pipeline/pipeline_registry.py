"""Project pipelines."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from ugvae_pipeline.pipelines import (
    compare,
    encode,
    evaluate,
    extract,
    grouping,
    ingestion,
    training,
)


def register_pipelines() -> dict[str, Pipeline]:
    """Stage pipelines, the ``train`` chain, ``__default__`` = every stage, ``compare`` (reads
    the MLflow store) and ``encode`` (one's own groups with the latest model); neither of the
    last two is part of the chain or of ``__default__``.

    ``train`` = ingestion → grouping → training, so ``kedro run --pipeline=train`` works on a
    fresh clone; ``grouping`` builds the groups training reads (training and held-out groups).
    The evaluation groups belong to the stages that read them: ``extract`` builds them
    (``build_evaluation_groups``) and encodes them, so ``kedro run --pipelines=extract,evaluate``
    scores the latest model on the groups the current ``groups:`` parameters name, and a
    training run neither builds them nor fails on them. A run that trains and builds them
    (``kedro run``) checks them right after ingestion, before training (``hooks.py``).
    Stages are listed here rather than found with ``find_pipelines``: Kedro 1.7 loads only the
    folders named on the command line, which would lose composite names.
    """
    stages = {
        "ingestion": ingestion.create_pipeline(),
        "grouping": grouping.create_pipeline(),
        "training": training.create_pipeline(),
        "extract": Pipeline(
            [grouping.create_evaluation_pipeline(), extract.create_pipeline()], tags=["extract"]
        ),
        "evaluate": evaluate.create_pipeline(),
    }
    pipelines = dict(stages)
    pipelines["train"] = stages["ingestion"] + stages["grouping"] + stages["training"]
    pipelines["__default__"] = sum(stages.values(), Pipeline([]))
    pipelines["compare"] = compare.create_pipeline()
    pipelines["encode"] = encode.create_pipeline()
    return pipelines
