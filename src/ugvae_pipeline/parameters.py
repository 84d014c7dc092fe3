"""One typed check for every parameter group, run once before any node.

Each group of ``conf/*/parameters*.yml`` has a schema here (``model:`` and ``train:`` are the
typed configs of the model and the trainer). A value of the wrong type or out of range, an
unknown name (``data.source``, a strategy, a series), and an **unknown key** (a typo such as
``groups.series.group_szie``) stop the run at once with the key's path and what is allowed;
so does a top-level name that is no group (``trian.epochs=1``), with the nearest group.
Keys are checked where they are given: the YAML files hold the defaults, and an explicit
``null`` is refused where a value is needed. The parameter validation hook calls
:func:`check_parameters` on every group of the configuration, whatever the pipeline, before
any node and before any MLflow run; nodes get checked values and do not check them again.
Knows nothing of Kedro.
"""

from __future__ import annotations

import difflib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ugvae_pipeline.data.grouping.clusters import CLUSTER_FEATURES
from ugvae_pipeline.data.grouping.series import SERIES, SERIES_DIGITS, SERIES_DRAWS
from ugvae_pipeline.data.grouping.strategies import (
    EVALUATION_STRATEGIES,
    TRAINING_STRATEGIES,
    check_interpolation_types,
    evaluation_strategy,
)
from ugvae_pipeline.data.sources import SOURCES
from ugvae_pipeline.data.splits import check_fractions
from ugvae_pipeline.models import model_config_from_params
from ugvae_pipeline.models.registry import configured_name, model_class
from ugvae_pipeline.progress import progress_mode
from ugvae_pipeline.training.config import TrainConfig, check_model_fits_training


class Block(BaseModel):
    """A parameter block: strict types (no "0.2" for 0.2, no true for 1), no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True)


# --- data: ---------------------------------------------------------------------------------


class Splits(Block):
    validation_fraction: float = Field(None, gt=0, lt=1)
    test_fraction: float = Field(None, gt=0, lt=1)
    split_seed: int = Field(None, ge=0)


class MnistBlock(Block):
    root: str = None
    download: bool = None
    limit: int | None = Field(None, ge=1)


class CelebaBlock(Block):
    root: str = None
    image_size: int = Field(None, ge=1)
    crop_size: int | None = Field(None, ge=1)
    limit: int | None = Field(None, ge=1)
    skip_bad_images: bool = None


class ImageFolderBlock(Splits):
    root: str = None
    channels: Literal[1, 3] = None
    image_size: int = Field(None, ge=1)
    limit: int | None = Field(None, ge=1)
    skip_bad_images: bool = None


class MixedBlock(Block):
    sources: list[str | dict[str, Any]] = None


def _given(value: float | None, default: float) -> float:
    return default if value is None else value


class DataParams(Splits):
    source: Literal[tuple(SOURCES)] = None  # type: ignore[valid-type]
    workers: int | None = Field(None, ge=1)
    mnist: MnistBlock = None
    uci_digits: Splits = None
    celeba: CelebaBlock = None
    image_folder: ImageFolderBlock = None
    mixed: MixedBlock = None

    @model_validator(mode="after")
    def _fractions_leave_training_images(self) -> DataParams:
        # what ingestion uses where a block leaves a fraction out: the loaders' defaults (0.1,
        # 0.2), and for uci_digits the top-level data.* fractions first (data/sources.py)
        top = (_given(self.validation_fraction, 0.1), _given(self.test_fraction, 0.2))
        for prefix, block, defaults in (
            ("data", self, (0.1, 0.2)),
            ("data.image_folder", self.image_folder, (0.1, 0.2)),
            ("data.uci_digits", self.uci_digits, top),
        ):
            if block is not None and (
                block.validation_fraction is not None or block.test_fraction is not None
            ):
                check_fractions(
                    _given(block.validation_fraction, defaults[0]),
                    _given(block.test_fraction, defaults[1]),
                    prefix,
                )
        return self


# --- groups: -------------------------------------------------------------------------------


class TrainingGroups(Block):
    strategy: Literal[TRAINING_STRATEGIES] = None  # type: ignore[valid-type]
    label_column: str = None


class ClusterGroups(Block):
    n_clusters: int = Field(None, ge=2)
    alpha: float = Field(None, gt=0)
    pca_dims: int = Field(None, ge=1)
    seed: int = Field(None, ge=0)
    features: Literal[CLUSTER_FEATURES] = None  # type: ignore[valid-type]
    refresh_every: int = Field(None, ge=1)


class HeldoutGroups(Block):
    n_groups: int = Field(None, ge=1)
    # null: train.group_size, at most the validation images (data/grouping/random.py)
    group_size: int | None = Field(None, ge=1)
    seed: int = Field(None, ge=0)


class RandomGroups(Block):
    n_groups: int = Field(None, ge=0)  # 0: no random reference groups
    seed: int = Field(None, ge=0)


class EvaluationGroups(Block):
    strategy: Literal[("auto", *sorted(EVALUATION_STRATEGIES))] = None  # type: ignore[valid-type]
    split: Literal["validation", "test", "train"] = None
    random: RandomGroups = None


class SeriesGroups(Block):
    names: list[str] = Field(None, min_length=1)
    groups_per_series: int = Field(None, ge=1)
    group_size: int = Field(None, ge=1)
    digits: Literal[SERIES_DIGITS] = None  # type: ignore[valid-type]
    draw: Literal[SERIES_DRAWS] = None  # type: ignore[valid-type]
    seed: int = Field(None, ge=0)

    @field_validator("names")
    @classmethod
    def _registered(cls, names: list[str]) -> list[str]:
        unknown = [name for name in names if name not in SERIES]
        if unknown:
            raise ValueError(f"unknown series {unknown}; registered: {sorted(SERIES)}")
        return names


class ClassGroups(Block):
    n_groups: int = Field(None, ge=1)
    group_size: int = Field(None, ge=1)
    seed: int = Field(None, ge=0)
    column: str = None


class FolderGroups(Block):
    n_groups: int = Field(None, ge=1)
    group_size: int = Field(None, ge=1)
    seed: int = Field(None, ge=0)


class AttributeGroups(Block):
    group_types: list[str] = Field(None, min_length=1)
    n_groups: int = Field(None, ge=1)
    group_size: int = Field(None, ge=1)
    seed: int = Field(None, ge=0)
    exclusive: bool = None
    n_random_groups: int = Field(None, ge=0)


class DomainGroups(Block):
    domains: list[str] | None = Field(None, min_length=2, max_length=2)
    p: float = Field(None, ge=0.0, le=1.0)
    n_groups: int = Field(None, ge=1)
    group_size: int = Field(None, ge=1)
    seed: int = Field(None, ge=0)


class GroupsParams(Block):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    training: TrainingGroups = None
    clusters: ClusterGroups = None
    heldout: HeldoutGroups = None
    evaluation: EvaluationGroups = None
    series: SeriesGroups = None
    class_: ClassGroups = Field(None, alias="class")
    attribute: AttributeGroups = None
    domain: DomainGroups = None
    folder: FolderGroups = None


# --- extract:, evaluate:, figures:, compare:, encode: -------------------------------------


class ExtractParams(Block):
    groups_per_chunk: int = Field(None, ge=1)
    progress: Any = None

    @field_validator("progress")
    @classmethod
    def _progress(cls, value: Any) -> Any:
        progress_mode(value, "extract.progress")
        return value


class Interpolation(Block):
    from_type: str | None = None  # null: the first structured group type
    to_type: str | None = None  # null: the second (or the random groups)
    steps: int = Field(None, ge=2)


class Sweep(Block):
    component: int = Field(None, ge=0)
    steps: int = Field(None, ge=1)
    radius: float = Field(None, gt=0)


class BetaEffect(Block):
    max_groups: int = Field(None, ge=2)
    images_per_group: int = Field(None, ge=1)
    groups_per_chunk: int = Field(None, ge=1)


class EvaluateParams(Block):
    seed: int = Field(None, ge=0)
    local_map_images: int = Field(None, ge=1)
    interpolation: Interpolation = None
    sweep: Sweep = None
    beta_effect: BetaEffect = None


class FiguresParams(Block):
    n_groups: int = Field(None, ge=1)
    n_images: int = Field(None, ge=1)
    seed: int = Field(None, ge=0)


class EncodeParams(Block):
    """``root`` may be null here (the shipped default): the encode node names it when unset."""

    root: str | None = None
    groups_csv: str | None = None
    crop_size: int | None = Field(None, ge=1)
    skip_bad_images: bool = None
    groups_per_chunk: int = Field(None, ge=1)
    progress: Any = None

    @field_validator("progress")
    @classmethod
    def _progress(cls, value: Any) -> Any:
        progress_mode(value, "encode.progress")
        return value


class CompareParams(Block):
    experiment: str = None
    filter: str = None
    metrics: list[str] = Field(None, min_length=1)


# --- search: --------------------------------------------------------------------------------


class SearchDimension(Block):
    """One dimension of the search space: ``choices`` (categorical) or ``low``/``high`` (an
    integer range when both are integers, else a float range; ``log`` for a log scale)."""

    choices: list[str | int | float | bool] | None = Field(None, min_length=1)
    low: int | float | None = None
    high: int | float | None = None
    log: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> SearchDimension:
        if (self.choices is None) == (self.low is None or self.high is None):
            raise ValueError("give either choices, or low and high")
        if self.low is not None and self.high is not None:
            if not self.low < self.high:
                raise ValueError(f"low ({self.low}) must be below high ({self.high})")
            if self.log and self.low <= 0:
                raise ValueError(f"log needs low > 0, got {self.low}")
        return self


class SearchParams(Block):
    study_name: str = None
    storage: str = None
    n_trials: int = Field(None, ge=1)
    workers: int = Field(None, ge=1)
    sampler: Literal["tpe", "random"] = None
    sampler_seed: int = Field(None, ge=0)
    objective: Literal["validation_group_score", "heldout_loss"] = None
    pruner: Literal["median", "none"] = None
    pruner_warmup_epochs: int = Field(None, ge=0)
    mlflow_experiment: str | None = None
    export_prefix: str = None
    params: dict[str, Any] = None
    space: dict[str, SearchDimension | None] = Field(None, min_length=1)  # None: left out


SCHEMAS: dict[str, type[Block]] = {
    "data": DataParams,
    "groups": GroupsParams,
    "extract": ExtractParams,
    "evaluate": EvaluateParams,
    "figures": FiguresParams,
    "compare": CompareParams,
    "encode": EncodeParams,
    "search": SearchParams,
}


# --- errors that name the parameter --------------------------------------------------------


def _path(group: str, loc: tuple) -> str:
    return ".".join(
        [
            group,
            *(
                ("class" if part == "class_" else str(part))
                for part in loc
                if not isinstance(part, int)
            ),
        ]
    )


def _message(group: str, error: dict, schema: type[BaseModel]) -> str:
    path, value, kind, ctx = (
        _path(group, error["loc"]),
        error.get("input"),
        error["type"],
        error.get("ctx") or {},
    )
    if kind == "extra_forbidden":
        parent = schema
        for part in error["loc"][:-1]:
            if isinstance(part, int):
                continue
            field = parent.model_fields.get(part) or parent.model_fields.get(f"{part}_")
            annotation = field.annotation if field else None
            parent = next(
                (
                    a
                    for a in getattr(annotation, "__args__", (annotation,))
                    if isinstance(a, type) and issubclass(a, BaseModel)
                ),
                None,
            )
            if parent is None:
                break
        valid = sorted(f.alias or name for name, f in parent.model_fields.items()) if parent else []
        return f"unknown parameter {path}; valid names there: {valid}"
    if kind == "literal_error":
        return f"{path}={value!r} is unknown; choose one of {ctx.get('expected', '')}"
    bounds = {
        "greater_than_equal": f">= {ctx.get('ge')}",
        "greater_than": f"> {ctx.get('gt')}",
        "less_than": f"< {ctx.get('lt')}",
        "less_than_equal": f"<= {ctx.get('le')}",
    }
    if kind in ("int_type", "int_parsing", "int_from_float") or (
        kind in bounds and isinstance(value, int)
    ):
        return f"{path} must be an integer {bounds.get(kind, '')}".rstrip() + f", got {value!r}"
    if kind in ("float_type", "float_parsing") or kind in bounds:
        return f"{path} must be a number {bounds.get(kind, '')}".rstrip() + f", got {value!r}"
    if kind in ("bool_type", "bool_parsing"):
        return f"{path} must be true or false, got {value!r}"
    if kind in ("too_short", "list_type"):
        return f"{path} must be a non-empty list, got {value!r}"
    if kind == "string_type":
        return f"{path} must be a string, got {value!r}"
    if kind == "value_error":  # a validator's own message; most already name the parameter
        message = error["msg"].removeprefix("Value error, ")
        return message if message.startswith(f"{group}.") else f"{path}: {message}"
    return f"{path}: {error['msg']}, got {value!r}"


def check_group(group: str, values: Any) -> None:
    """Check one parameter group (``data``, ``groups``, ...) against its schema."""
    if not isinstance(values, dict):
        raise ValueError(f"{group} must be a mapping of parameters, got {values!r}")
    if group == "model":
        model_config_from_params(values)
        return
    if group == "train":
        TrainConfig.from_dict(values)
        return
    schema = SCHEMAS[group]
    try:
        schema.model_validate(values)
    except ValidationError as err:
        raise ValueError("; ".join(_message(group, e, schema) for e in err.errors())) from None
    except ValueError as err:  # a model validator's own message (it names the parameters)
        raise ValueError(str(err)) from None


GROUPS = (
    "model",
    "train",
    "data",
    "groups",
    "extract",
    "evaluate",
    "figures",
    "compare",
    "encode",
    "search",
)


# top-level names that are not a group: what they are
RUNTIME_NAMES = {
    "mlflow_experiment": "the MLflow experiment of the run (kedro run --params mlflow_experiment=NAME)",
}


def check_names(params: dict[str, Any]) -> None:
    """Every top-level name of ``params`` is a group (:data:`GROUPS`) or a runtime name
    (:data:`RUNTIME_NAMES`): a misspelt group (``trian.epochs=1``) would otherwise be ignored,
    its values never used."""
    valid = [*GROUPS, *RUNTIME_NAMES]
    unknown = [name for name in params if name not in valid]
    if unknown:
        hints = [
            f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name)
            for name in unknown
            for close in [difflib.get_close_matches(str(name), valid, n=1)]
        ]
        raise ValueError(
            f"unknown parameter group(s) {', '.join(hints)}; the parameter groups are "
            f"{list(GROUPS)} (and {list(RUNTIME_NAMES)} on the command line): correct the "
            "name in conf/*/parameters*.yml or in --params"
        )


def check_parameters(params: dict[str, Any]) -> None:
    """Check the names of ``params`` (``{"data": {...}, "groups": {...}, ...}``: an unknown
    top-level name is an error), every group present, then what spans groups: the evaluation
    groups ``data.source`` can build, and the interpolation's group types against them."""
    check_names(params)
    for group in GROUPS:
        if group in params:
            check_group(group, params[group])
    if "model" in params and "train" in params:
        model = model_config_from_params(params["model"])
        cls = model_class(configured_name(params["model"]))
        check_model_fits_training(
            cls.__name__,
            cls.has_group_latent,
            getattr(model, "contrastive_weight", 0),
            TrainConfig.from_dict(params["train"]),
        )
    if "groups" in params and "data" in params:
        strategy = evaluation_strategy(params["groups"], params["data"])
        if "evaluate" in params:
            check_interpolation_types(params["evaluate"], params["groups"], strategy)
