"""Project hooks: parameters validated before any node runs; artifacts logged to MLflow;
Ctrl-C recorded as a KILLED MLflow run; concurrent runs set the MLflow store up in turn; runs
tagged with their model, training groups and image cache."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path

import mlflow
from kedro.framework.hooks import hook_impl
from kedro.io import AbstractVersionedDataset
from mlflow import MlflowClient

from ugvae_pipeline.data.group_folder import check_encode_root
from ugvae_pipeline.models.registry import configured_name
from ugvae_pipeline.parameters import GROUPS, check_parameters
from ugvae_pipeline.runs import run_name, training_groups
from ugvae_pipeline.training.checkpoint import checkpoint_path, checkpoint_run_id
from ugvae_pipeline.training.config import TrainConfig
from ugvae_pipeline.training.preemption import SIGNAL_NAMES, TrainingInterrupted

log = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent first runs are not serialised
    fcntl = None


class ValidateParametersHook:
    """Fail fast, naming the parameter and its allowed values, before expensive work starts.

    Runs before every other ``before_pipeline_run`` hook (``tryfirst``): a run refused for its
    parameters opens no MLflow run (one opened first would be left RUNNING, since Kedro calls
    no ``on_pipeline_error`` for this hook, and MLflow's exit handler would close it FINISHED).
    """

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        check_pipeline_parameters(pipeline, catalog)


def check_pipeline_parameters(pipeline, catalog) -> None:
    """Check the parameter groups ``pipeline`` reads from ``catalog`` (``parameters.py``), as
    before every ``kedro run`` and on every process of a ``torchrun`` launch."""
    inputs = pipeline.inputs()
    used = {group for group in GROUPS if f"params:{group}" in inputs}
    if used & {"evaluate", "groups"}:  # which evaluation groups: set by groups: and data.source
        used |= {"groups", "data"}
    params = {group: catalog.load(f"params:{group}") for group in used}
    check_parameters(params)
    if "encode" in params:  # a folder to encode exists only on the command line
        check_encode_root(params["encode"].get("root"))


class MlflowRunTagsHook:
    """Name each tracked run for what it is (``runs.run_name``: model and variant, data source,
    training groups, seed, e.g. ``ugvae-variant-mnist_embedded-random-s1``) and tag it with its
    model and how its training groups were formed (``labels`` for ML-VAE whatever
    ``groups.training.strategy`` says), so the MLflow UI's run list reads without opening runs.
    Runs after kedro-mlflow opened the run (which names it after the pipeline)."""

    @hook_impl(trylast=True)
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        if mlflow.active_run() is None:
            return
        model_params, groups_params = catalog.load("params:model"), catalog.load("params:groups")
        strategy, _ = training_groups(model_params, groups_params)
        name = run_name(
            model_params,
            groups_params,
            catalog.load("params:data"),
            catalog.load("params:train").get("seed"),
            run_params.get("pipeline_names"),
        )
        mlflow.set_tags(
            {
                "model": configured_name(model_params),
                "training_groups": strategy,
                "mlflow.runName": name,
            }
        )

    @hook_impl
    def after_node_run(self, node, outputs) -> None:
        """Tag the run with the image cache entry ingestion used (``image_cache``: its key)."""
        images = outputs.get("images")
        if mlflow.active_run() is None or getattr(images, "filename", None) is None:
            return
        metrics = outputs.get("ingestion_metrics") or {}
        reused = (metrics.get("ingest_cache_reused") or [{"value": 0}])[0]["value"]
        mlflow.set_tags(
            {"image_cache": Path(images.filename).parent.name, "image_cache_reused": bool(reused)}
        )


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


class RunInterrupted(Exception):
    """Ctrl-C (SIGINT) or SIGTERM (a scheduler's pre-emption) during ``kedro run``, raised as an
    ``Exception`` so that hooks see it."""

    def __init__(self, message: str, signal_name: str) -> None:
        super().__init__(message)
        self.signal_name = signal_name


class InterruptedRunHook:
    """Ctrl-C or SIGTERM ends the run's MLflow run as KILLED, tagged with the signal
    (``killed_by``), with everything logged so far; ``kedro run`` exits non-zero.

    A ``KeyboardInterrupt`` is not an ``Exception`` and SIGTERM kills the process outright:
    Kedro calls no ``on_pipeline_error`` hook, and the run would stay RUNNING or be closed as
    FINISHED. While a pipeline runs in the main thread, this hook turns both signals into
    :class:`RunInterrupted`: Kedro calls ``on_pipeline_error``, kedro-mlflow closes the run as
    FAILED (every other exception stays FAILED) and this hook, called after it, marks the run
    KILLED. During training the trainer's own handler takes over: it finishes the current step,
    writes a checkpoint there and raises ``TrainingInterrupted``, which ends the run the same
    way.
    """

    def __init__(self) -> None:
        self._previous_handlers: dict = {}
        self._run_id: str | None = None
        self._node: str | None = None

    @hook_impl(trylast=True)  # after every other hook that could fail before the runner starts
    def before_pipeline_run(self) -> None:
        self._node = None
        run = mlflow.active_run()  # a signal before the first node still finds its run
        self._run_id = run.info.run_id if run is not None else None
        if threading.current_thread() is threading.main_thread():
            self._previous_handlers = {
                sig: signal.signal(sig, self._interrupt) for sig in SIGNAL_NAMES
            }

    def _interrupt(self, signum, frame) -> None:
        name = SIGNAL_NAMES[signal.Signals(signum)]
        raise RunInterrupted(f"interrupted by {name} during node {self._node or '(none)'}", name)

    @hook_impl
    def before_node_run(self, node) -> None:
        self._node = node.name
        run = mlflow.active_run()
        self._run_id = run.info.run_id if run is not None else self._run_id

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._restore_handler()

    @hook_impl
    def on_pipeline_error(self, error: Exception) -> None:
        self._restore_handler()
        if isinstance(error, (RunInterrupted, TrainingInterrupted)) and self._run_id is not None:
            client = MlflowClient()
            client.set_tag(self._run_id, "killed_by", error.signal_name)
            client.set_terminated(self._run_id, "KILLED")
            log.warning("MLflow run %s marked KILLED: %s", self._run_id, error)

    def _restore_handler(self) -> None:
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)
        self._previous_handlers = {}


class MlflowSetupLockHook:
    """Concurrent ``kedro run`` processes of one project set the MLflow store up one at a time.

    When a context is created, kedro-mlflow creates and migrates the SQLite store and the
    experiment; two processes doing it at once race (``duplicate column name: step`` while
    migrating a new ``mlflow.db``, or a duplicate experiment). This hook holds an exclusive
    lock on ``<project>/.mlflow_setup.lock`` from before kedro-mlflow's
    ``after_context_created`` (``tryfirst``) until after it (``trylast``).
    """

    LOCK_FILE = ".mlflow_setup.lock"

    def __init__(self) -> None:
        self._handle = None

    @hook_impl(tryfirst=True, specname="after_context_created")
    def acquire(self, context) -> None:
        if fcntl is None:
            return
        self._handle = open(os.path.join(context.project_path, self.LOCK_FILE), "a")  # noqa: SIM115
        fcntl.flock(self._handle, fcntl.LOCK_EX)

    @hook_impl(trylast=True, specname="after_context_created")
    def release(self, context) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


class ResumedRunHook:
    """A run with ``train.resume: true`` is tagged ``resumed_from`` with the id of the tracked run
    that wrote the checkpoint it continues; if that run is still RUNNING (its process was
    killed with SIGKILL, or its machine went away, so nothing could end it), it is marked
    KILLED, tagged ``killed_by``. Runs after kedro-mlflow opened this run (``trylast``)."""

    LOST = "lost: still RUNNING when a resume of it started (SIGKILL, or its machine went away)"

    @hook_impl(trylast=True)
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        active = mlflow.active_run()
        if active is None or "params:train" not in pipeline.inputs():
            return
        train = TrainConfig.from_dict(catalog.load("params:train"))  # its defaults too
        if not train.resume:
            return
        path = checkpoint_path(train.checkpoint_dir)
        try:
            continued = checkpoint_run_id(path)
        except ValueError:  # an unloadable checkpoint: the trainer refuses it, naming the fix
            return
        if continued is None or continued == active.info.run_id:
            return
        client = MlflowClient()
        client.set_tag(active.info.run_id, "resumed_from", continued)
        try:
            previous = client.get_run(continued)
        except mlflow.exceptions.MlflowException:  # a run of another tracking store
            return
        if previous.info.status == "RUNNING":
            client.set_tag(continued, "killed_by", self.LOST)
            client.set_terminated(continued, "KILLED")
            log.warning("MLflow run %s was left RUNNING: marked KILLED", continued)
        log.info("this run continues MLflow run %s (tag resumed_from)", continued)
