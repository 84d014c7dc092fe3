from kedro.pipeline import Pipeline, node

from ugvae_pipeline.pipelines.grouping.nodes import (
    build_evaluation_groups,
    build_heldout_groups,
    build_training_groups,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                build_training_groups,
                inputs=["image_metadata", "params:train", "params:groups", "params:model"],
                outputs="train_groups",
                name="build_training_groups",
            ),
            node(
                build_heldout_groups,
                inputs=["image_metadata", "params:groups.heldout"],
                outputs=["heldout_groups", "heldout_group_metadata"],
                name="build_heldout_groups",
            ),
            node(
                build_evaluation_groups,
                inputs=["image_metadata", "params:groups", "params:data"],
                outputs=["evaluation_groups", "evaluation_group_metadata"],
                name="build_evaluation_groups",
            ),
        ],
        tags=["grouping"],
    )
