"""The configuration every model config extends: the model's shape and likelihood, once.

A model's config is a frozen dataclass deriving from :class:`ModelConfig`; it adds only its
own fields (and their checks) to the five shared ones.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, TypeVar

from ugvae_pipeline.models.architectures import ARCHITECTURES
from ugvae_pipeline.validation import dataclass_kwargs

_Config = TypeVar("_Config", bound="ModelConfig")


@dataclass(frozen=True)
class ModelConfig:
    """Shape and likelihood shared by every model (docs/model.md §6), validated on creation.

    Attributes:
        architecture: encoder/decoder pair, a key of ``ARCHITECTURES`` (``mlp28`` and
            ``conv64`` are official; ``conv28`` is a small conv encoder with the mlp28 decoder).
        channels: image channels C (1 grayscale, 3 RGB).
        image_size: side H = W in pixels; must be the architecture's size.
        dim_z: local latent size.
        var_x: fixed variance of the Gaussian likelihood of the pixels, > 0.
    """

    architecture: str = "mlp28"
    channels: int = 1
    image_size: int = 28
    dim_z: int = 10
    var_x: float = 0.2

    # the fields that must be integers >= 1; a model config adds its own sizes
    integer_fields: ClassVar[tuple[str, ...]] = ("channels", "image_size", "dim_z")

    def __post_init__(self) -> None:
        """The architecture, its image size, the sizes ``integer_fields`` (each >= 1) and
        ``var_x`` (> 0); a model config extends this with the checks of its own fields."""
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"model.architecture={self.architecture!r} is unknown; "
                f"choose one of {sorted(ARCHITECTURES)}"
            )
        for name in self.integer_fields:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"model.{name} must be an integer >= 1, got {value!r}")
        spec = ARCHITECTURES[self.architecture]
        if self.image_size != spec.image_size:
            raise ValueError(
                f"model.image_size={self.image_size} does not fit architecture "
                f"{self.architecture!r}, which takes {spec.image_size}x{spec.image_size} images; "
                f"set model.image_size={spec.image_size} or pick an architecture for "
                f"{self.image_size}x{self.image_size} ({_sizes()})"
            )
        if isinstance(self.var_x, bool) or not isinstance(self.var_x, (int, float)):
            raise ValueError(f"model.var_x must be a positive number, got {self.var_x!r}")
        if not self.var_x > 0:
            raise ValueError(f"model.var_x must be > 0 (official default 0.2), got {self.var_x}")

    @classmethod
    def from_dict(cls: type[_Config], values: dict[str, Any]) -> _Config:
        """Build from a parameters mapping; unknown keys are an error naming the valid ones."""
        return cls(**dataclass_kwargs(cls, values, "model"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def __getattr__(name: str) -> Any:
    """``UGVAEConfig``, defined beside its model in ``models.ugvae``: a re-export so that UG-VAE
    models pickled while it lived here (the MLflow ``pytorch`` flavour) still unpickle."""
    if name == "UGVAEConfig":
        from ugvae_pipeline.models.ugvae import UGVAEConfig

        return UGVAEConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _sizes() -> str:
    return ", ".join(f"{name}: {spec.image_size}" for name, spec in sorted(ARCHITECTURES.items()))
