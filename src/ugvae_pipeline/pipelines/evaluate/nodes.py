"""Nodes of the evaluate pipeline: scores, baselines and the paper's figures (§4.1, §4.3)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ugvae_pipeline.evaluation import figures
from ugvae_pipeline.evaluation.beta_effect import (
    BETA_EFFECT_SCORES,
    beta_effect_scores,
    codes_from_tables,
    subsample,
)
from ugvae_pipeline.evaluation.code_tables import code_matrix
from ugvae_pipeline.evaluation.metrics import gmm_loglik_curve, spread_ratio
from ugvae_pipeline.evaluation.scores import (
    RANDOM,
    domain_alignment_scores,
    representations,
    score_table,
)
from ugvae_pipeline.html_report import last_epoch_table, render_report
from ugvae_pipeline.models.registry import configured_name, model_class, model_name
from ugvae_pipeline.runs import run_title


def score_global_codes(
    global_codes: pd.DataFrame,
    local_codes: pd.DataFrame,
    images: np.ndarray,
    groups: np.ndarray,
    image_metadata: pd.DataFrame,
    evaluate_params: dict,
) -> tuple[pd.DataFrame, dict, dict]:
    """The score table, the same scores as a JSON-able dict, and as MLflow metrics.

    ``global_code_spread`` (summary and metric) is the between-group spread of the group code's
    posterior means over its posterior std, on the structured groups
    (``evaluation.metrics.spread_ratio``; for models without a group latent, of the mean local
    code against the mean local variance).

    When the evaluation groups include single-domain groups of two databases (``domain``
    strategy), the summary also holds the domain-alignment scores (§4.2).
    """
    labels = image_metadata["label"].to_numpy()
    reps = representations(global_codes, local_codes, images, groups, labels)
    types = global_codes["group_type"].to_numpy(str)
    table = score_table(reps, types, evaluate_params["seed"])
    metrics = {
        row["representation"]: {k: v for k, v in row.items() if k not in ("representation", "kind")}
        for row in table.to_dict("records")
    }
    domain = domain_alignment_scores(
        global_codes, local_codes, image_metadata, evaluate_params["seed"]
    )
    summary = {
        "group_types": sorted(set(types)),
        "n_groups": int(len(types)),
        "group_size": int(groups.shape[1]),
        "scores": metrics,
        "domain_alignment": domain,
    }
    structured = types != RANDOM
    spread = spread_ratio(
        code_matrix(global_codes, "global_mean")[structured],
        code_matrix(global_codes, "global_var")[structured],
    )
    summary["global_code_spread"] = spread
    flat = {
        f"{rep}_{name}": value for rep, scores in metrics.items() for name, value in scores.items()
    }
    flat["global_code_spread"] = spread
    flat.update({f"domain_{name}": value for name, value in domain.items()})
    mlflow_metrics = {
        f"eval_{name}": [{"value": float(value), "step": 0}] for name, value in flat.items()
    }
    return table, summary, mlflow_metrics


def score_beta_effect(
    model, global_codes: pd.DataFrame, local_codes: pd.DataFrame, evaluate_params: dict
) -> tuple[dict, dict]:
    """How much β moves the decoded evaluation images beside z (``evaluation.beta_effect``):
    a JSON-able summary (non-finite scores as null) and the finite scores as MLflow metrics
    ``eval_<score>`` (``eval_beta_effect``, ``eval_z_change``, ...)."""
    options = evaluate_params.get("beta_effect") or {}
    beta, z, types = subsample(
        *codes_from_tables(global_codes, local_codes),
        options.get("max_groups", 60),
        options.get("images_per_group", 16),
    )
    seed = evaluate_params["seed"]
    scores = beta_effect_scores(
        model, beta, z, types, seed=seed, groups_per_chunk=options.get("groups_per_chunk", 16)
    )
    summary = {
        "model": model_name(model),
        "n_groups": int(z.shape[0]),
        "group_size": int(z.shape[1]),
        "seed": seed,
        "scores": {key: value if math.isfinite(value) else None for key, value in scores.items()},
    }
    metrics = {
        f"eval_{key}": [{"value": float(value), "step": 0}]
        for key, value in scores.items()
        if math.isfinite(value)
    }
    return summary, metrics


def beta_effect_table(beta_effect: dict) -> pd.DataFrame:
    """The β-effect summary as ``score | value | what it measures`` rows (NaN: not applicable)."""
    scores = beta_effect["scores"]
    return pd.DataFrame(
        {
            "score": list(BETA_EFFECT_SCORES),
            "value": [
                np.nan if scores.get(key) is None else float(scores[key])
                for key in BETA_EFFECT_SCORES
            ],
            "what it measures": list(BETA_EFFECT_SCORES.values()),
        }
    )


def code_description(model_params: dict) -> str:
    """What the ``global_code`` representation of a model's scores is."""
    if model_class(configured_name(model_params)).has_group_latent:
        return "posterior mean of its group latent"
    return "mean of the group's local codes (it has no group latent)"


def gmm_curve(global_codes: pd.DataFrame, evaluate_params: dict) -> tuple[pd.DataFrame, Figure]:
    """Official §4.3 experiment: GMM log-likelihood of structured vs random μ_β, 2–9 components."""
    random = (global_codes["group_type"] == RANDOM).to_numpy()
    if not random.any() or random.all():
        raise ValueError("the GMM curve needs both structured and random evaluation groups")
    codes = code_matrix(global_codes, "global_mean")
    curve = gmm_loglik_curve(codes[~random], codes[random], seed=evaluate_params["seed"])
    return curve, figures.gmm_curve_figure(curve)


def code_maps(
    global_codes: pd.DataFrame, local_codes: pd.DataFrame, evaluate_params: dict
) -> tuple[Figure, Figure, Figure]:
    """t-SNE and PCA of μ_β coloured by group type; t-SNE of μ_z coloured by label."""
    seed = evaluate_params["seed"]
    codes = code_matrix(global_codes, "global_mean")
    types = global_codes["group_type"].to_numpy(str)
    n_local = min(evaluate_params["local_map_images"], len(local_codes))
    sample = local_codes.sample(n=n_local, random_state=seed)
    return (
        figures.code_map(codes, types, "tsne", "t-SNE of global codes μ_β by group type", seed),
        figures.code_map(codes, types, "pca", "PCA of global codes μ_β by group type", seed),
        figures.code_map(
            code_matrix(sample, "local_mean"),
            sample["label"].to_numpy(),
            "tsne",
            "t-SNE of local codes μ_z by label",
            seed,
        ),
    )


def latent_traversals(
    model, global_codes: pd.DataFrame, local_codes: pd.DataFrame, evaluate_params: dict
) -> tuple[Figure, Figure]:
    """§4.1: a grid whose columns interpolate β between two groups and whose rows interpolate μ_z
    between the first image of each (each row a fixed local code); the per-component sweep.
    Models without a global latent or mixture components get the same figures on what they
    have (``figures.interpolation_grid``, ``figures.component_sweep``)."""
    params = dict(evaluate_params["interpolation"])
    types = global_codes["group_type"]
    available = sorted(types.unique())
    # unset (null): the first two structured types in table order, else the random groups
    ordered = [t for t in pd.unique(types) if t != RANDOM] + [RANDOM]
    chosen = {params.get(key) for key in ("from_type", "to_type")}
    defaults = iter(t for t in ordered if t in available and t not in chosen)
    for key in ("from_type", "to_type"):
        if params.get(key) is None:
            params[key] = next(defaults, params.get("from_type") or available[0])
        elif params[key] not in available:
            raise ValueError(
                f"evaluate.interpolation.{key}={params[key]!r} is not an evaluation group type; "
                f"choose one of {available}"
            )
    group_a = global_codes[types == params["from_type"]].iloc[0]
    group_b = global_codes[types == params["to_type"]].iloc[
        int(params["from_type"] == params["to_type"])
    ]
    beta_a = code_matrix(group_a.to_frame().T, "global_mean")[0]
    beta_b = code_matrix(group_b.to_frame().T, "global_mean")[0]
    z_a, z_b = (
        code_matrix(
            local_codes[local_codes["group_id"] == g["group_id"]].sort_values("position").iloc[:1],
            "local_mean",
        )[0]
        for g in (group_a, group_b)
    )
    if not model.has_group_latent:  # i.i.d. models: no global code to interpolate
        beta_a = beta_b = None
    sweep = evaluate_params["sweep"]
    if model.has_mixture and not 0 <= sweep["component"] < model.config.n_components:
        raise ValueError(
            f"evaluate.sweep.component={sweep['component']} must be in [0, {model.config.n_components})"
        )
    return (
        figures.interpolation_grid(model, beta_a, beta_b, z_a, z_b, steps=params["steps"]),
        figures.component_sweep(
            model, sweep["component"], sweep["steps"], sweep["radius"], seed=evaluate_params["seed"]
        ),
    )


def evaluation_report(
    history: pd.DataFrame,
    scores: pd.DataFrame,
    summary: dict,
    model_params: dict,
    groups_params: dict,
    beta_effect: dict | None = None,
    **figures: bytes,
) -> str:
    """One HTML page: the model and how its training groups were formed, last-epoch losses, the
    score table (and domain alignment), the β-effect scores, the figures."""
    tables = {
        "Training, last epoch (negative ELBO and its terms, per image)": last_epoch_table(history),
        "Scores of the global code beside the baselines": scores,
    }
    if summary.get("domain_alignment"):
        tables["Domain alignment (§4.2)"] = pd.DataFrame(
            {
                "score": list(summary["domain_alignment"]),
                "value": list(summary["domain_alignment"].values()),
            }
        )
    if beta_effect is not None:
        tables[
            "Effect of the global code on the decoded images (mean |Δ pixel|, β vs local code swaps)"
        ] = beta_effect_table(beta_effect)
    return render_report(
        f"Evaluation report: {run_title(model_params, groups_params)}",
        tables,
        {name.replace("_", " "): png for name, png in figures.items()},
        intro=(
            f"The group code (global_code) is the model's {code_description(model_params)}. "
            f"{summary['n_groups']} evaluation groups of {summary['group_size']} images, "
            f"group types: {', '.join(summary['group_types'])}."
        ),
    )
