from kedro.pipeline import Pipeline, node

from ugvae_pipeline.pipelines.compare.nodes import compare_runs, query_runs


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                query_runs,
                inputs="params:compare",
                outputs="tracked_runs",
                name="query_mlflow_runs",
            ),
            node(
                compare_runs,
                inputs=["tracked_runs", "params:compare"],
                outputs=[
                    "comparison_runs",
                    "comparison_summary",
                    "comparison_table",
                    "comparison_figure",
                ],
                name="compare_runs",
            ),
        ],
        tags=["compare"],
    )
