from kedro.pipeline import Pipeline, node

from ugvae_pipeline.pipelines.grouping.nodes import (
    build_evaluation_groups,
    build_heldout_groups,
    build_training_groups,
    build_validation_groups,
)


def create_pipeline(**kwargs) -> Pipeline:
    """The groups training reads: the training plan, the held-out groups and the validation
    groups the group code is scored on during training."""
    return Pipeline(
        [
            node(
                build_training_groups,
                inputs=[
                    "images",
                    "image_metadata",
                    "params:train",
                    "params:groups",
                    "params:model",
                ],
                outputs="train_groups",
                name="build_training_groups",
            ),
            node(
                build_heldout_groups,
                inputs=["image_metadata", "params:groups.heldout", "params:train"],
                outputs=["heldout_groups", "heldout_group_metadata"],
                name="build_heldout_groups",
            ),
            node(
                build_validation_groups,
                inputs=["image_metadata", "params:groups", "params:data", "params:train"],
                outputs=["validation_groups", "validation_group_metadata"],
                name="build_validation_groups",
            ),
        ],
        tags=["grouping"],
    )


def create_evaluation_pipeline(**kwargs) -> Pipeline:
    """The groups the evaluation reads (``pipeline_registry`` puts them in the ``extract``
    stage, whose tag they get there)."""
    return Pipeline(
        [
            node(
                build_evaluation_groups,
                inputs=["image_metadata", "params:groups", "params:data"],
                outputs=["evaluation_groups", "evaluation_group_metadata"],
                name="build_evaluation_groups",
            ),
        ]
    )
