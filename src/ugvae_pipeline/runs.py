"""How a run is described in reports and comparison tables: how its training groups are
formed (a model that ``trains_on_label_groups``, ML-VAE, always gets label groups), the
sentence and title reports give it, and whether a UG-VAE run is the paper's model or a variant.
"""

from __future__ import annotations

from typing import Any

from ugvae_pipeline.models.registry import MODEL_TYPES, configured_name, model_class

# UG-VAE as the paper and its official code define it; any other value makes it a variant
PAPER_OPTIONS = {
    "global_factor_input": "features_and_probs",
    "global_factor_variance": "per_observation",
    "mixture_prior": "uniform",
    "global_prior_factor": "false",
    "global_encoder": "product",
    "contrastive_weight": "0",
}
PAPER_ARCHITECTURES = ("mlp28", "conv64")  # the official "k_vae" and "beta_vae" networks
OPTION_LABELS = {
    "global_factor_input": "factors",
    "global_factor_variance": "variance",
    "mixture_prior": "p(d|β)",
    "global_prior_factor": "prior factor",
    "global_encoder": "encoder",
    "contrastive_weight": "contrastive",
}


def model_variant(name: str, options: dict[str, Any]) -> str:
    """``paper`` for UG-VAE with the paper's options and networks, else ``variant(<what
    differs>)``, e.g. ``variant(factors=probs, variance=shared, p(d|β)=global, conv28)``;
    ``-`` for the baselines. ``options``: the ``model`` parameters (values may be strings, as
    MLflow stores them; a missing option is the paper's)."""
    if name != "ugvae":
        return "-"
    differences = [
        f"{OPTION_LABELS[key]}={str(options[key]).lower()}"
        for key, paper in PAPER_OPTIONS.items()
        if key in options and options[key] is not None and not _is_paper(options[key], paper)
    ]
    architecture = options.get("architecture")
    if architecture is not None and str(architecture) not in PAPER_ARCHITECTURES:
        differences.append(str(architecture))
    return f"variant({', '.join(differences)})" if differences else "paper"


def _is_paper(value: Any, paper: str) -> bool:
    """Whether an option's value (maybe a string, as MLflow stores it) is the paper's; numbers
    compare as numbers (0, 0.0 and "0.0" are all the paper's 0)."""
    try:
        return float(value) == float(paper)
    except (TypeError, ValueError):
        return str(value).lower() == paper


def _trains_on_label_groups(name: str) -> bool:
    """Whether the model ``name`` is weakly supervised (``False`` for a name no model has,
    e.g. one read back from an old tracked run)."""
    return name in MODEL_TYPES and model_class(name).trains_on_label_groups


def training_groups_strategy(name: str, strategy: str) -> str:
    """The training-group strategy a model gets: ``labels`` for the weakly supervised models
    (ML-VAE), ``groups.training.strategy`` for the others."""
    return "labels" if _trains_on_label_groups(name) else strategy


def training_groups(model_params: dict[str, Any], groups_params: dict[str, Any]) -> tuple[str, str]:
    """How a run's training groups are formed, from its parameters: ``(strategy, label_column)``,
    the strategy as ``training_groups_strategy`` gives it for ``model.name``."""
    training = groups_params.get("training") or {}
    strategy = training_groups_strategy(
        configured_name(model_params), training.get("strategy", "random")
    )
    return strategy, training.get("label_column", "label")


def describe_training_groups(
    name: str, strategy: str, label_column: str = "label", cluster_features: str = "pixels"
) -> str:
    """One sentence for reports: how the training groups of this run were formed
    (``cluster_features``: ``groups.clusters.features``)."""
    effective = training_groups_strategy(name, strategy)
    if effective == "labels":
        supervision = (
            "ML-VAE's intended weak supervision"
            if _trains_on_label_groups(name)
            else "weak supervision"
        )
        return f"groups formed by labels: every group shares one value of {label_column!r} ({supervision})"
    if effective == "mixed_domains":
        return "mixed-domain groups, formed without labels"
    if effective == "clusters":
        if cluster_features == "pixels":
            clustered = "pixel clusters"
        else:
            clustered = f"clusters of the model's {cluster_features.replace('_', ' ')}"
        return f"groups of Dirichlet compositions over {clustered}, formed without labels"
    return "random groups, formed without labels (unsupervised)"


def run_title(model_params: dict[str, Any], groups_params: dict[str, Any]) -> str:
    """``<model.name>, trained on <how its training groups were formed>``, for every report."""
    name = configured_name(model_params)
    features = (groups_params.get("clusters") or {}).get("features") or "pixels"
    described = describe_training_groups(
        name, *training_groups(model_params, groups_params), cluster_features=features
    )
    return f"{name}, trained on {described}"


def data_source_label(data_params: dict[str, Any]) -> str:
    """The data source of ``data:`` parameters as names give it: ``data.source``, or for
    ``mixed`` its sources (domain names) joined, e.g. ``uci_digits+mnist_embedded``."""
    source = data_params.get("source", "?")
    if source == "mixed":
        entries = (data_params.get("mixed") or {}).get("sources") or []
        names = [
            e if isinstance(e, str) else e.get("domain", e.get("source", "?")) for e in entries
        ]
        source = "+".join(map(str, names)) or source
    return str(source)


def run_name(
    model_params: dict[str, Any],
    groups_params: dict[str, Any],
    data_params: dict[str, Any],
    seed: Any,
    pipelines: list[str] | None = None,
) -> str:
    """A run name that reads without opening the run: model (UG-VAE: ``-paper`` or
    ``-variant``), data source, how the training groups were formed, seed, and the pipelines
    when not the whole chain (sorted: Kedro hands ``--pipelines`` over as a set, in no fixed
    order, and the name must not depend on it), e.g. ``ugvae-variant-mnist_embedded-random-s1``,
    ``gmvae-mnist_embedded+uci_digits-mixed_domains-s2-train``."""
    name = configured_name(model_params)
    variant = model_variant(name, model_params)
    label = name if variant == "-" else f"{name}-{'paper' if variant == 'paper' else 'variant'}"
    strategy, _ = training_groups(model_params, groups_params)
    parts = [label, data_source_label(data_params), strategy, f"s{seed}"]
    if pipelines and pipelines != ["__default__"]:
        parts.append("+".join(sorted(set(pipelines))))
    return "-".join(parts)
