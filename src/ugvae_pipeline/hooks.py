"""Project hooks: parameters validated before any node runs; artifacts logged to MLflow."""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
from kedro.framework.hooks import hook_impl
from kedro.io import AbstractVersionedDataset

from ugvae_pipeline.models import UGVAEConfig
from ugvae_pipeline.training.config import TrainConfig

log = logging.getLogger(__name__)

VALIDATORS = {"params:model": UGVAEConfig.from_dict, "params:train": TrainConfig.from_dict}


class ValidateParametersHook:
    """Fail fast, naming the parameter and its allowed values, before expensive work starts."""

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        inputs = pipeline.inputs()
        for name, validate in VALIDATORS.items():
            if name in inputs:
                validate(catalog.load(name))


class MlflowArtifactsHook:
    """Log each saved file whose catalog entry has ``metadata.mlflow_artifact_path``.

    The file logged is the exact version just written, so the MLflow run and the versioned
    Data Catalog hold the same bytes.
    """

    def __init__(self) -> None:
        self._catalog = None

    @hook_impl
    def after_catalog_created(self, catalog) -> None:
        self._catalog = catalog

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data, node) -> None:
        if self._catalog is None or mlflow.active_run() is None:
            return
        dataset = self._catalog.get(dataset_name)
        artifact_path = (getattr(dataset, "metadata", None) or {}).get("mlflow_artifact_path")
        if artifact_path is None:
            return
        if isinstance(dataset, AbstractVersionedDataset) and dataset._version is not None:
            local_path = dataset._get_versioned_path(dataset.resolve_save_version())
        else:
            local_path = dataset._filepath
        mlflow.log_artifact(str(Path(local_path)), artifact_path=artifact_path)
        log.info("logged %s to MLflow under %s/", dataset_name, artifact_path)
