"""Typed, validated configuration of a UG-VAE: the single source of a model's shape."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from ugvae_pipeline.models.architectures import ARCHITECTURES
from ugvae_pipeline.validation import dataclass_kwargs

GLOBAL_FACTOR_INPUTS = ("features_and_probs", "probs", "features")
GLOBAL_FACTOR_VARIANCES = ("per_observation", "shared")
MIXTURE_PRIORS = ("uniform", "global")


_Config = TypeVar("_Config", bound="ModelConfigDict")


class ModelConfigDict:
    """``from_dict``/``to_dict`` of every model config dataclass (the ``model`` parameters)."""

    @classmethod
    def from_dict(cls: type[_Config], values: dict[str, Any]) -> _Config:
        """Build from a parameters mapping; unknown keys are an error naming the valid ones."""
        return cls(**dataclass_kwargs(cls, values, "model"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class UGVAEConfig(ModelConfigDict):
    """Shape and likelihood of a UG-VAE (``../shared/SPEC.md`` §2–5).

    Attributes:
        architecture: encoder/decoder pair, a key of ``ARCHITECTURES`` (``mlp28`` and
            ``conv64`` are official; ``conv28`` is a small conv encoder with the mlp28 decoder).
        channels: image channels C (1 grayscale, 3 RGB).
        image_size: side H = W in pixels; must be the architecture's size.
        dim_z: local latent size.
        dim_beta: global latent size.
        n_components: K, mixture components of the local prior.
        var_x: fixed variance of the Gaussian likelihood p(x | z, β), > 0.
        global_prior_factor: include N(0, I) as a factor of q(β | X). The official code does
            not (``False``); with it, q(β | X) has the exact conjugate-posterior form.
        global_factor_input: what each observation's factor of q(β | X) is computed from:
            ``features_and_probs`` (official: Linear(256+K, 2·dim_beta) on [h_i ; π_i]),
            ``probs`` (Linear(K, 2·dim_beta) on π_i alone, so μ_β is a function of the
            group's soft component histogram) or ``features`` (Linear(256, 2·dim_beta) on h_i).
        global_factor_variance: ``per_observation`` (official: each factor's log-variance is
            an output of the factor network) or ``shared`` (one learned log-variance per β
            dimension for all factors, so μ_β is the plain mean of the factor means, e.g. a
            linear function of the group's mean π with ``global_factor_input: probs``).
        mixture_prior: prior of the component d_i: ``uniform`` (official Cat(1/K)) or
            ``global`` (p(d_i | β) = Cat(softmax(Linear(dim_beta, K)(β))), which gives β a
            reason to encode the group's composition over the K components).
    """

    architecture: str = "mlp28"
    channels: int = 1
    image_size: int = 28
    dim_z: int = 10
    dim_beta: int = 20
    n_components: int = 10
    var_x: float = 0.2
    global_prior_factor: bool = False
    global_factor_input: str = "features_and_probs"
    global_factor_variance: str = "per_observation"
    mixture_prior: str = "uniform"

    def __post_init__(self) -> None:
        validate_shape(self, ("channels", "image_size", "dim_z", "dim_beta", "n_components"))
        if not isinstance(self.global_prior_factor, bool):
            raise ValueError(
                f"model.global_prior_factor must be true or false, got {self.global_prior_factor!r}"
            )

        if self.global_factor_input not in GLOBAL_FACTOR_INPUTS:
            raise ValueError(
                f"model.global_factor_input={self.global_factor_input!r} is unknown; "
                f"choose one of {GLOBAL_FACTOR_INPUTS}"
            )
        if self.global_factor_variance not in GLOBAL_FACTOR_VARIANCES:
            raise ValueError(
                f"model.global_factor_variance={self.global_factor_variance!r} is unknown; "
                f"choose one of {GLOBAL_FACTOR_VARIANCES}"
            )
        if self.mixture_prior not in MIXTURE_PRIORS:
            raise ValueError(
                f"model.mixture_prior={self.mixture_prior!r} is unknown; choose one of {MIXTURE_PRIORS}"
            )


def validate_shape(config: Any, integer_fields: tuple[str, ...]) -> None:
    """Checks shared by every model config: the architecture, its image size, the integer
    sizes ``integer_fields`` (each >= 1) and the likelihood variance ``var_x`` (> 0)."""
    if config.architecture not in ARCHITECTURES:
        raise ValueError(
            f"model.architecture={config.architecture!r} is unknown; "
            f"choose one of {sorted(ARCHITECTURES)}"
        )
    for name in integer_fields:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"model.{name} must be an integer >= 1, got {value!r}")
    spec = ARCHITECTURES[config.architecture]
    if config.image_size != spec.image_size:
        raise ValueError(
            f"model.image_size={config.image_size} does not fit architecture "
            f"{config.architecture!r}, which takes {spec.image_size}x{spec.image_size} images; "
            f"set model.image_size={spec.image_size} or pick an architecture for "
            f"{config.image_size}x{config.image_size} ({_sizes()})"
        )
    if isinstance(config.var_x, bool) or not isinstance(config.var_x, (int, float)):
        raise ValueError(f"model.var_x must be a positive number, got {config.var_x!r}")
    if not config.var_x > 0:
        raise ValueError(f"model.var_x must be > 0 (official default 0.2), got {config.var_x}")


def _sizes() -> str:
    return ", ".join(f"{name}: {spec.image_size}" for name, spec in sorted(ARCHITECTURES.items()))
