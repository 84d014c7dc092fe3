from kedro.pipeline import Pipeline, node

from ugvae_pipeline.pipelines.ingestion.nodes import ingest_images


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                ingest_images,
                inputs=["params:data", "image_cache"],
                outputs=["images", "image_metadata", "ingestion_metrics"],
                name="ingest_images",
                tags=["ingestion"],
            )
        ]
    )
