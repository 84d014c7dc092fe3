from kedro.pipeline import Pipeline, node

from ugvae_pipeline.pipelines.evaluate.nodes import (
    code_maps,
    evaluation_report,
    gmm_curve,
    latent_traversals,
    score_beta_effect,
    score_global_codes,
)

FIGURES = (
    "global_tsne",
    "global_pca",
    "local_tsne",
    "gmm_loglik_curve",
    "global_interpolation",
    "component_sweep",
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                score_global_codes,
                inputs=[
                    "global_codes",
                    "local_codes",
                    "images",
                    "evaluation_groups",
                    "image_metadata",
                    "params:evaluate",
                ],
                outputs=["evaluation_scores", "evaluation_summary", "evaluation_metrics"],
                name="score_global_codes",
            ),
            node(
                gmm_curve,
                inputs=["global_codes", "params:evaluate"],
                outputs=["gmm_loglik_curve", "gmm_loglik_curve_figure"],
                name="gmm_loglik_curve_of_global_codes",
            ),
            node(
                code_maps,
                inputs=["global_codes", "local_codes", "params:evaluate"],
                outputs=["global_tsne_figure", "global_pca_figure", "local_tsne_figure"],
                name="map_codes",
            ),
            node(
                latent_traversals,
                inputs=["trained_model", "global_codes", "local_codes", "params:evaluate"],
                outputs=["global_interpolation_figure", "component_sweep_figure"],
                name="traverse_latents",
            ),
            node(
                score_beta_effect,
                inputs=["trained_model", "global_codes", "local_codes", "params:evaluate"],
                outputs=["evaluation_beta_effect", "evaluation_beta_effect_metrics"],
                name="score_beta_effect",
            ),
            node(
                evaluation_report,
                inputs={
                    "history": "training_history",
                    "scores": "evaluation_scores",
                    "summary": "evaluation_summary",
                    "beta_effect": "evaluation_beta_effect",
                    "model_params": "params:model",
                    "groups_params": "params:groups",
                    **{name: f"{name}_figure" for name in FIGURES},
                },
                outputs="evaluation_report",
                name="report_evaluation",
            ),
        ],
        tags=["evaluate"],
    )
