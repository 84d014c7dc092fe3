from kedro.pipeline import Pipeline, node

from ugvae_pipeline.pipelines.extract.nodes import extract_codes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                extract_codes,
                inputs=[
                    "trained_model",
                    "images",
                    "image_metadata",
                    "evaluation_groups",
                    "evaluation_group_metadata",
                    "params:extract",
                    "params:model",
                ],
                outputs=["global_codes", "local_codes"],
                name="extract_codes",
            )
        ],
        tags=["extract"],
    )
