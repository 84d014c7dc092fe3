from kedro.pipeline import Pipeline, node

from ugvae_pipeline.pipelines.encode.nodes import encode_own_groups


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                encode_own_groups,
                inputs=["trained_model", "params:encode"],
                outputs=["encoded_global_codes", "encoded_local_codes", "encode_metrics"],
                name="encode_own_groups",
            )
        ],
        tags=["encode"],
    )
