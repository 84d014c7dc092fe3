from kedro.pipeline import Pipeline, node

from ugvae_pipeline.pipelines.grouping.nodes import (
    build_attribute_groups,
    build_class_groups,
    build_domain_groups,
    build_domain_training_groups,
    build_heldout_groups,
    build_training_groups,
)


def _heldout_random() -> node:
    return node(
        build_heldout_groups,
        inputs=["image_metadata", "params:groups.heldout"],
        outputs=["heldout_groups", "heldout_group_metadata"],
        name="build_heldout_groups",
    )


def create_pipeline(**kwargs) -> Pipeline:
    """Random training groups and random held-out groups (the default experiment)."""
    return Pipeline(
        [
            node(
                build_training_groups,
                inputs=["image_metadata", "params:train"],
                outputs="train_groups",
                name="build_training_groups",
            ),
            _heldout_random(),
        ],
        tags=["grouping"],
    )


def create_domain_training_pipeline(**kwargs) -> Pipeline:
    """Mixed-domain training groups (domain alignment) in place of random ones, plus held-out groups."""
    return Pipeline(
        [
            node(
                build_domain_training_groups,
                inputs=["image_metadata", "params:groups.domain", "params:train"],
                outputs="train_groups",
                name="build_domain_training_groups",
            ),
            _heldout_random(),
        ],
        tags=["grouping"],
    )


def create_structured_pipelines(**kwargs) -> dict[str, Pipeline]:
    """Structured evaluation groups, one pipeline per strategy (each needs its kind of metadata)."""
    strategies = {
        "class": build_class_groups,
        "attribute": build_attribute_groups,
        "domain": build_domain_groups,
    }
    return {
        f"{strategy}_groups": Pipeline(
            [
                node(
                    function,
                    inputs=["image_metadata", f"params:groups.{strategy}"],
                    outputs=[f"{strategy}_groups", f"{strategy}_group_metadata"],
                    name=f"build_{strategy}_groups",
                )
            ],
            tags=["grouping"],
        )
        for strategy, function in strategies.items()
    }
