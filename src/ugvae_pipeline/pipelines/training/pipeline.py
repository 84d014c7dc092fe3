from kedro.pipeline import Pipeline, node

from ugvae_pipeline.pipelines.training.nodes import (
    history_metrics,
    model_for_mlflow,
    train_model,
    training_figures,
    training_report,
    validation_scores_figure,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                train_model,
                inputs=[
                    "images",
                    "train_groups",
                    "heldout_groups",
                    "params:model",
                    "params:train",
                    "params:groups",
                    "validation_groups",
                    "validation_group_metadata",
                    "image_metadata",
                ],
                outputs=["trained_model", "training_history"],
                name="train_model",
            ),
            node(
                model_for_mlflow,
                inputs="trained_model",
                outputs="mlflow_model",
                name="log_model_to_mlflow",
            ),
            node(
                history_metrics,
                inputs="training_history",
                outputs="training_metrics",
                name="log_training_metrics",
            ),
            node(
                training_figures,
                inputs=[
                    "trained_model",
                    "images",
                    "heldout_groups",
                    "training_history",
                    "params:figures",
                ],
                outputs=[
                    "reconstructions_figure",
                    "component_samples_figure",
                    "loss_curves_figure",
                ],
                name="plot_training_figures",
            ),
            node(
                validation_scores_figure,
                inputs="training_history",
                outputs="validation_scores_figure",
                name="plot_validation_scores",
            ),
            node(
                training_report,
                inputs={
                    "history": "training_history",
                    "model_params": "params:model",
                    "train_params": "params:train",
                    "groups_params": "params:groups",
                    "loss_curves": "loss_curves_figure",
                    "reconstructions": "reconstructions_figure",
                    "component_samples": "component_samples_figure",
                    "validation_scores": "validation_scores_figure",
                },
                outputs="training_report",
                name="report_training",
            ),
        ],
        tags=["training"],
    )
