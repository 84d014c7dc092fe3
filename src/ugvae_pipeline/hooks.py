"""Project hooks: parameters validated before any node runs; artifacts logged to MLflow;
Ctrl-C recorded as a KILLED MLflow run; concurrent runs set the MLflow store up in turn; runs
tagged with their model, training groups and image cache (a run that scores a saved model
described by that model); artifacts that do not belong together (made from different images)
never combined."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
from pathlib import Path

import mlflow
from kedro.framework.hooks import hook_impl
from kedro.io import AbstractVersionedDataset
from kedro.io.core import Version, get_filepath_str
from kedro.pipeline import Pipeline
from mlflow import MlflowClient

from ugvae_pipeline.data.group_folder import check_encode_root
from ugvae_pipeline.data.grouping.strategies import evaluation_groups
from ugvae_pipeline.lineage import (
    Lineage,
    LineageMismatch,
    check_data_source,
    data_parameters_of,
    mismatch_message,
    of_images,
)
from ugvae_pipeline.models.registry import configured_name, model_name
from ugvae_pipeline.parameters import check_parameters
from ugvae_pipeline.runs import run_name, training_groups, training_groups_strategy
from ugvae_pipeline.session import interrupt_of
from ugvae_pipeline.training.checkpoint import checkpoint_path, checkpoint_to_resume
from ugvae_pipeline.training.config import TrainConfig
from ugvae_pipeline.training.preemption import SIGNAL_NAMES, Interrupted, TrainingInterrupted

log = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent first runs are not serialised
    fcntl = None


class ValidateParametersHook:
    """Fail fast, naming the parameter and its allowed values, before expensive work starts.

    Before the run, every parameter group of the configuration is checked, whatever the
    pipeline (:func:`check_pipeline_parameters`). Runs before every other
    ``before_pipeline_run`` hook (``tryfirst``): a run refused for its parameters opens no
    MLflow run (one opened first would be left RUNNING, since Kedro calls no
    ``on_pipeline_error`` for this hook, and MLflow's exit handler would close it FINISHED).

    A run that trains and builds evaluation groups (``kedro run``) also checks, as soon as the
    image metadata exists (before the first node that does not write it), that the evaluation
    groups can be built from these images: it builds them once (milliseconds) and discards
    them, so a split too small for ``groups.<strategy>.group_size`` stops the run before
    training, whatever order the runner picks among the nodes ready after ingestion. (Under
    ``ParallelRunner`` each node's process has its own hooks: there the node alone refuses them.)
    """

    def __init__(self) -> None:
        self._evaluation_groups_unchecked = False
        self._lock = threading.Lock()  # ThreadRunner: nodes ready together wait for the check

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        check_pipeline_parameters(pipeline, catalog)
        outputs = pipeline.all_outputs()
        self._evaluation_groups_unchecked = {"evaluation_groups", "trained_model"} <= outputs

    @hook_impl(tryfirst=True)
    def before_node_run(self, node, catalog) -> None:
        if "image_metadata" in node.outputs:
            return
        with self._lock:
            if self._evaluation_groups_unchecked:  # stays set while they fail: no node starts
                evaluation_groups(
                    catalog.load("image_metadata"),
                    catalog.load("params:groups"),
                    catalog.load("params:data"),
                )
                self._evaluation_groups_unchecked = False


def check_pipeline_parameters(pipeline, catalog) -> None:
    """Check every parameter group of the configuration in ``catalog`` (``parameters.py``: an
    unknown top-level name is an error too), whatever ``pipeline`` reads, as before every
    ``kedro run`` and on every process of a ``torchrun`` launch, so a typo in a group this
    pipeline does not read is found now, not when a later run reads it. ``encode.root`` is
    required only where ``pipeline`` encodes."""
    params = catalog.load("parameters")
    check_parameters(params)
    if "params:encode" in pipeline.inputs():  # a folder to encode exists only on the command line
        check_encode_root(params["encode"].get("root"))


class MlflowRunTagsHook:
    """Name each tracked run for what it is (``runs.run_name``: model and variant, data source,
    training groups, seed, e.g. ``ugvae-variant-mnist_embedded-random-s1``) and tag it with its
    model and how its training groups were formed (``labels`` for ML-VAE whatever
    ``groups.training.strategy`` says), so the MLflow UI's run list reads without opening runs.
    Runs after kedro-mlflow opened the run (which names it after the pipeline).

    A run that scores a saved model without training it (``kedro run
    --pipelines=extract,evaluate``, ``evaluate``, ``encode``) describes that model, not the
    configuration: its ``model:`` parameters (as the nodes read them and kedro-mlflow logs them)
    become the model's own configuration, ``groups.training`` how its training groups were
    formed, and the run logs ``train.seed`` from the model file, is tagged ``model_version`` (the
    ``trained_model`` version scored) and ``trained_in_run`` (the MLflow run that trained it),
    and is named for them. A ``--params model.<key>`` or ``groups.training.<key>`` the model
    contradicts stops the run before its first node. A run that reads the images but not the
    ``data:`` parameters logs ``data.*`` from the image cache entry it reads (the data it worked
    on) and is tagged ``image_cache``; a run that trains is tagged ``model_version`` too.
    """

    def __init__(self) -> None:
        self._refusal: Exception | None = None

    @hook_impl(trylast=True)
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        self._refusal = None
        inputs = pipeline.inputs()
        scored = _saved_model(catalog) if "trained_model" in inputs else None
        provenance = {}
        if scored is not None:
            provenance = scored[0].provenance
            try:
                _describe_scored_model(catalog, scored[0], run_params.get("runtime_params") or {})
            except ValueError as err:  # raised in the run (before its first node): it ends FAILED
                self._refusal = err
            if "training_history" in inputs:
                _pin_training_history(catalog, scored[1])
        if mlflow.active_run() is None:
            return
        model_params, groups_params = catalog.load("params:model"), catalog.load("params:groups")
        data_params, seed = catalog.load("params:data"), catalog.load("params:train").get("seed")
        logged, tags = {}, {}
        images = _loaded(catalog, "images") if "images" in inputs else None
        if images is not None:
            lineage, ingested = of_images(images), data_parameters_of(images)
            if lineage is not None:
                tags["image_cache"] = lineage.image_cache
            if ingested is not None and "params:data" not in inputs:  # no node logs conf's
                data_params = ingested
                logged.update(_flatten({"data": ingested}))
        if scored is not None and "params:train" not in inputs:
            seed = provenance.get("seed", "?")
            if provenance.get("seed") is not None:
                logged["train.seed"] = provenance["seed"]
        if scored is not None:
            tags["model_version"] = scored[1]
            tags["trained_in_run"] = provenance.get("training_run_id") or "unknown"
        elif "trained_model" in pipeline.all_outputs():
            tags["model_version"] = catalog.get("trained_model").resolve_save_version()
        strategy, _ = training_groups(model_params, groups_params)
        name = run_name(
            model_params, groups_params, data_params, seed, run_params.get("pipeline_names")
        )
        if logged:
            mlflow.log_params(logged)
        mlflow.set_tags(
            {
                "model": configured_name(model_params),
                "training_groups": strategy,
                "mlflow.runName": name,
                **tags,
            }
        )

    @hook_impl
    def before_node_run(self) -> None:
        """Stop before the first node when the scored model contradicts ``--params``."""
        refusal, self._refusal = self._refusal, None
        if refusal is not None:
            raise refusal

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


def _loaded(catalog, name: str):
    """``catalog.load(name)``, or ``None`` when it cannot be loaded: the node that reads it
    fails inside the run with the dataset's own message."""
    try:
        return catalog.load(name)
    except Exception as err:  # noqa: BLE001 - reported by the node that loads it
        log.debug("%s not loaded before the run: %s", name, err)
        return None


def _saved_model(catalog) -> tuple[object, str] | None:
    """The ``trained_model`` a run reads without training it, and its catalog version."""
    model = _loaded(catalog, "trained_model")
    if model is None:
        return None
    if not isinstance(getattr(model, "provenance", None), dict):
        model.provenance = {}
    return model, str(catalog.get("trained_model").resolve_load_version())


def _pin_training_history(catalog, model_version: str) -> None:
    """Reports of a scored model show its own training history: the ``training_history`` its
    training run wrote (the same version as the model), unless ``--load-versions`` names one."""
    dataset = catalog.get("training_history")
    if not isinstance(dataset, AbstractVersionedDataset) or dataset._version is None:
        return
    if dataset._version.load is not None:
        return
    pinned = catalog.get("training_history", version=Version(model_version, dataset._version.save))
    if pinned.exists():
        catalog["training_history"] = pinned
    else:
        log.warning(
            "no training_history of version %s (the scored model's): the report shows the latest",
            model_version,
        )


def _flatten(values: dict, prefix: str = "") -> dict:
    """Nested parameters as kedro-mlflow logs them: ``{"data.source": ..., ...}``."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _describe_scored_model(catalog, model, runtime_params: dict) -> None:
    """Make the run's ``model:`` parameters the scored model's own configuration and its
    ``groups.training`` how the model's training groups were formed (when its file records it).

    Raises:
        ValueError: a ``--params`` value of those groups differs from the model's, naming both
            and how to score a model trained with it.
    """
    own = {"name": model_name(model), **model.config.to_dict()}
    recorded = model.provenance.get("training_groups") or {}
    groups = dict(catalog.load("params:groups"))
    training = {**(groups.get("training") or {}), **recorded}
    explicit = _flatten(runtime_params)
    scored = {f"model.{key}": value for key, value in own.items()}
    scored.update({f"groups.training.{key}": value for key, value in recorded.items()})
    conflicts = []
    for key, value in scored.items():
        if key not in explicit:
            continue
        given = explicit[key]
        if key == "groups.training.strategy":  # ML-VAE trains on label groups whatever it says
            given = training_groups_strategy(own["name"], str(given))
        if str(given) != str(value):
            conflicts.append(f"--params {key}={explicit[key]} (the model has {value})")
    if conflicts:
        raise ValueError(
            f"this run scores the saved trained_model ({own['name']}) as it was trained, but "
            f"{'; '.join(conflicts)}: drop those --params, or score a model trained with them: "
            "train one, or pick its version with --load-versions trained_model:<version> (the "
            "folders under the trained_model filepath)"
        )
    differs = sorted(k for k, v in own.items() if catalog.load("params:model").get(k) != v)
    if differs:
        log.info(
            "scoring the saved trained_model with its own configuration, not model: of the "
            "configuration (differs in %s)",
            ", ".join(f"model.{key}" for key in differs),
        )
    catalog["params:model"] = own
    if recorded:
        catalog["params:groups"] = {**groups, "training": training}


class LineageHook:
    """Every artifact a node makes from the images records which (``lineage.Lineage``: the image
    cache entry's key and data source) in ``<filepath>/<version>.lineage.json`` (written before
    the artifact, so an artifact never lacks it); before each node runs, the inputs it combines
    (images, group plans, the model, codes, ...) must record one entry, else the run stops
    naming which input came from which images and the command that rebuilds them
    (``lineage.LineageMismatch``). A node that also reads ``data:`` must name those images'
    data source. Inputs written before lineage was recorded are left out of the check, with a
    warning.

    A node's outputs take the lineage its inputs share, or, for ingestion, that of the images
    it returns (a memory map of the cache entry). Under ``ParallelRunner`` each node's process
    has its own hooks: there only inputs read from the catalog are checked.
    """

    SUFFIX = ".lineage.json"  # <filepath>/<version>.lineage.json, beside the version's folder

    def __init__(self) -> None:
        self._catalog = None
        self._pipeline_names: list[str] = ["__default__"]
        self._made: dict[str, Lineage | None] = {}  # outputs of this run
        self._nodes: dict[str, Lineage | None] = {}  # the lineage of each node's inputs
        self._warned: set[str] = set()

    @hook_impl
    def after_catalog_created(self, catalog) -> None:
        self._catalog = catalog

    @hook_impl
    def before_pipeline_run(self, run_params, catalog) -> None:
        self._catalog = catalog
        self._pipeline_names = list(run_params.get("pipeline_names") or ["__default__"])
        self._made, self._nodes, self._warned = {}, {}, set()

    @hook_impl
    def before_node_run(self, node, catalog, inputs) -> None:
        lineages = {
            name: self._lineage_of(name, value, catalog)
            for name, value in inputs.items()
            if not (name.startswith("params:") or name == "parameters")
        }
        unrecorded = [name for name, lineage in lineages.items() if lineage is _UNRECORDED]
        lineages = {k: v for k, v in lineages.items() if v is not _UNRECORDED}
        if any(lineages.values()) and unrecorded:
            self._warn_unrecorded(node.name, unrecorded)
        known = {name: lineage for name, lineage in lineages.items() if lineage is not None}
        if len({lineage.image_cache for lineage in known.values()}) > 1:
            # the current images: what the inputs that differ from them must be rebuilt from
            reference = known.get("images") or of_images(_loaded(catalog, "images"))
            stale = [
                name
                for name, lineage in known.items()
                if reference is None or lineage.image_cache != reference.image_cache
            ]
            raise LineageMismatch(
                mismatch_message(
                    node.name,
                    known,
                    reference,
                    self._rebuild_command(stale),
                    _cache_root(catalog),
                )
            )
        lineage = next(iter(known.values()), None)
        if lineage is not None and "params:data" in inputs:
            check_data_source(node.name, inputs["params:data"], lineage)
        self._nodes[node.name] = lineage

    @hook_impl
    def after_node_run(self, node, outputs) -> None:
        lineage = self._nodes.pop(node.name, None)
        if lineage is None:  # ingestion: the images it returns
            lineage = next(filter(None, (of_images(value) for value in outputs.values())), None)
        for name in outputs:
            self._made[name] = lineage

    @hook_impl
    def before_dataset_saved(self, dataset_name: str, data) -> None:
        lineage = self._made.get(dataset_name)
        if lineage is None or self._catalog is None or of_images(data) is not None:
            return  # images carry their own
        dataset = self._catalog.get(dataset_name)
        location = _record_location(dataset, lambda d: d.resolve_save_version())
        if location is None:
            return
        fs, path = location
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        with fs.open(path, mode="w") as handle:
            handle.write(json.dumps(lineage.to_dict(), indent=2))

    def _lineage_of(self, name: str, value, catalog):
        """An input's lineage: its own (images), this run's record, the record beside the
        version loaded, ``None`` (not made from images) or ``_UNRECORDED`` (made before
        lineage was recorded)."""
        own = of_images(value)
        if own is not None:
            return own
        if name in self._made:
            return self._made[name]
        location = _record_location(catalog.get(name), lambda d: d.resolve_load_version())
        if location is None:
            return None
        fs, path = location
        try:
            with fs.open(path, mode="r") as handle:
                record = json.loads(handle.read())
        except FileNotFoundError:
            return _UNRECORDED
        except (OSError, ValueError) as err:
            raise LineageMismatch(
                f"{path}, the lineage record of {name}, is unreadable ({err}); delete that "
                f"version folder, or rebuild {name}"
            ) from err
        lineage = Lineage.from_dict(record)
        if lineage is None:
            raise LineageMismatch(f"{path}, the lineage record of {name}, is not one: {record}")
        return lineage

    def _warn_unrecorded(self, node: str, names: list[str]) -> None:
        names = [name for name in names if name not in self._warned]
        if names:
            self._warned.update(names)
            log.warning(
                "%s: %s record(s) no lineage (written before this project recorded it): whether "
                "they were made from the same images as the other inputs cannot be checked; "
                "rebuild them to record it",
                node,
                ", ".join(names),
            )

    def _rebuild_command(self, stale: list[str]) -> str:
        """``kedro run --pipelines=...`` that rebuilds ``stale`` from the current images: the
        smallest registered pipeline holding each node they depend on (ingestion aside), then
        the pipelines of this run, in the registry's order."""
        from kedro.framework.project import pipelines

        registered = {name: pipe for name, pipe in pipelines.items() if name != "__default__"}
        wanted = set(self._pipeline_names)
        known = pipelines.get("__default__") or Pipeline([])
        made = [name for name in stale if name in known.all_outputs()]
        upstream = known.to_outputs(*made) if made else Pipeline([])
        for node in upstream.nodes:
            if "images" in node.outputs:  # the current images stay
                continue
            holders = [(len(p.nodes), n) for n, p in registered.items() if node in p.nodes]
            if holders:
                wanted.add(min(holders)[1])
        if "__default__" in wanted:
            return "kedro run"
        return f"kedro run --pipelines={','.join(n for n in registered if n in wanted)}"


_UNRECORDED = object()  # an input written before lineage was recorded


def _cache_root(catalog) -> str | None:
    """The image cache folder, for the path of an entry's manifest in messages."""
    cache = catalog.get("image_cache")
    root = getattr(cache, "_path", None)
    return str(root) if root is not None else None


def _record_location(dataset, version_of) -> tuple[object, str] | None:
    """The filesystem and path of the lineage record of a versioned file dataset's version
    (``version_of(dataset)``): ``<filepath>/<version>.lineage.json``, beside the version's
    folder (Kedro finds versions as ``<filepath>/*/<name>``, so it is never taken for one, and
    the folder holds the artifact alone); ``None`` for other datasets."""
    if not isinstance(dataset, AbstractVersionedDataset) or dataset._version is None:
        return None
    fs = getattr(dataset, "_fs", None)
    if fs is None:
        return None
    version = version_of(dataset)
    folder = dataset._get_versioned_path(version).parent  # checks the version is one name
    record = folder.parent / f"{folder.name}{LineageHook.SUFFIX}"
    return fs, get_filepath_str(record, getattr(dataset, "_protocol", "file"))


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


class RunInterrupted(Interrupted):
    """Ctrl-C (SIGINT) or SIGTERM (a scheduler's pre-emption) during ``kedro run``, outside
    training: a ``BaseException``, as ``training/preemption.py`` explains."""


class InterruptedRunHook:
    """However a tracked run stops, its MLflow run does not stay RUNNING.

    Ctrl-C or SIGTERM ends it KILLED, tagged with the signal (``killed_by``), with everything
    logged so far; ``kedro run`` exits with 128 + the signal's number. While a pipeline runs in
    the main thread, this hook turns both signals into :class:`RunInterrupted` wherever they
    land: in a node, in a hook, while an output is saved (an MLflow insert too). During
    training the trainer's own handler takes over: it finishes the current step, writes a
    checkpoint there and raises ``TrainingInterrupted``. Both are ``BaseException``s, which
    ``ProjectSession`` (``session.py``) hands to the ``on_pipeline_error`` hooks: kedro-mlflow
    ends the run FAILED, then this hook, called after it, marks it KILLED.

    A process killed outright (SIGKILL, out of memory, a crash, a lost machine) ends nothing.
    So each tracked run is tagged with its process (``process_host``,
    ``process_pid_namespace``, ``process_id``, ``process_started``) and, when a run starts,
    every RUNNING run of its experiment whose process on this host is gone is marked KILLED,
    tagged ``killed_by`` (:data:`LOST`). A run of another host (or container) cannot be checked
    from here; a resume of it marks it (:class:`ResumedRunHook`).
    """

    LOST = "lost: its process ended without ending the run (SIGKILL, out of memory, a crash)"

    def __init__(self) -> None:
        self._previous_handlers: dict = {}
        self._run_id: str | None = None
        self._node: str | None = None

    @hook_impl(trylast=True)  # after every other hook that could fail before the runner starts
    def before_pipeline_run(self) -> None:
        self._node = None
        run = mlflow.active_run()  # a signal before the first node still finds its run
        self._run_id = run.info.run_id if run is not None else None
        if run is not None:
            mlflow.set_tags(process_tags())
            self._mark_lost_runs(run.info.experiment_id)
        if threading.current_thread() is threading.main_thread():
            self._previous_handlers = {
                sig: signal.signal(sig, self._interrupt) for sig in SIGNAL_NAMES
            }

    def _mark_lost_runs(self, experiment_id: str) -> None:
        client = MlflowClient()
        running = client.search_runs(
            [experiment_id],
            f"attributes.status = 'RUNNING' and tags.process_host = '{socket.gethostname()}'",
        )
        for run in running:
            if run.info.run_id != self._run_id and process_state(run.data.tags) == "gone":
                client.set_tag(run.info.run_id, "killed_by", self.LOST)
                client.set_terminated(run.info.run_id, "KILLED")
                log.warning(
                    "MLflow run %s was left RUNNING by process %s, which is gone: marked KILLED",
                    run.info.run_id,
                    run.data.tags["process_id"],
                )

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
        interrupt = interrupt_of(error)
        if interrupt is not None and self._run_id is not None:
            client = MlflowClient()
            client.set_tag(self._run_id, "killed_by", interrupt.signal_name)
            client.set_terminated(self._run_id, "KILLED")
            log.warning("MLflow run %s marked KILLED: %s", self._run_id, interrupt)

    def _restore_handler(self) -> None:
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)
        self._previous_handlers = {}


def _process_stat(pid: int) -> tuple[str, str] | None:
    """Process ``pid``'s state letter and start time (clock ticks after boot), from Linux's
    ``/proc``; None where there is no ``/proc`` entry for it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], fields[19]  # fields 3 and 22 of proc_pid_stat(5)


def _pid_namespace() -> str:
    """This process's PID namespace (Linux; "" elsewhere): containers of one host name can
    have their own, where process ids mean other processes."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""


def process_tags() -> dict[str, str]:
    """This process, as a tracked run is tagged with it (:func:`process_state` reads them)."""
    stat = _process_stat(os.getpid())
    return {
        "process_host": socket.gethostname(),
        "process_pid_namespace": _pid_namespace(),
        "process_id": str(os.getpid()),
        "process_started": stat[1] if stat else "",
    }


def process_state(tags: dict[str, str]) -> str:
    """``gone``, ``alive`` or ``unknown`` (another host or container, no process tags, not
    POSIX): the process a run's :func:`process_tags` name. A process id reused since (another
    start time) or a zombie counts as gone."""
    if (
        os.name != "posix"
        or tags.get("process_host") != socket.gethostname()
        or tags.get("process_pid_namespace", "") != _pid_namespace()
    ):
        return "unknown"
    try:
        pid = int(tags["process_id"])
    except (KeyError, ValueError):
        return "unknown"
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return "gone"
    except PermissionError:  # another user's process: it exists
        pass
    stat = _process_stat(pid)
    if stat is not None and (stat[0] == "Z" or stat[1] != tags.get("process_started", stat[1])):
        return "gone"
    return "alive"


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
    """``train.resume: true`` continues the run that wrote the checkpoint, and says so.

    Before the run (``tryfirst``: before kedro-mlflow opens an MLflow run, so a refused resume
    leaves none), where the pipeline trains: a resume with no checkpoint in
    ``train.checkpoint_dir``, or one that does not load, is refused, naming the fix (it would
    otherwise start again at epoch 1). ``train.epochs`` is taken from the checkpoint, so that
    ``kedro run --pipelines=training --params "train.resume=true"`` continues a run of any
    length; a different ``train.epochs`` given on the command line is refused.

    Once training from the checkpoint has run (the training node returned, or stopped at a
    step on a signal), the run is tagged ``resumed_from`` with the id of the run that wrote the
    checkpoint (a resume the trainer refuses, e.g. for another configuration, is not). If that
    run is still RUNNING and its process is not alive on this host (SIGKILL, or its machine
    went away), it is marked KILLED, tagged ``killed_by``.
    """

    LOST = "lost: still RUNNING when a resume of it started (SIGKILL, or its machine went away)"

    def __init__(self) -> None:
        self._continued: str | None = None
        self._run_id: str | None = None

    @hook_impl(tryfirst=True, specname="before_pipeline_run")
    def check_resume(self, run_params, pipeline, catalog) -> None:
        self._continued = self._run_id = None
        if "trained_model" not in pipeline.all_outputs():
            return
        train_params = catalog.load("params:train")
        if not train_params.get("resume"):  # (ValidateParametersHook checks the values)
            return
        train = TrainConfig.from_dict(train_params)  # its defaults too
        path = checkpoint_path(train.checkpoint_dir)
        state = checkpoint_to_resume(path)
        epochs = state["signature"].get("epochs")
        if epochs is not None and epochs != train.epochs:
            given = ((run_params.get("runtime_params") or {}).get("train") or {}).get("epochs")
            if given is not None:
                raise ValueError(
                    f"train.epochs={given} but the checkpoint {path} is of a run of {epochs} "
                    "epochs, which train.resume=true continues: leave train.epochs out (it is "
                    "taken from the checkpoint), or set train.resume=false to start a new run"
                )
            log.info(
                "train.resume: train.epochs=%d, from the checkpoint (the configuration says %d)",
                epochs,
                train.epochs,
            )
            _set_parameter(catalog, "train", "epochs", epochs)
        self._continued = state.get("run_id") or None

    @hook_impl(trylast=True)  # after kedro-mlflow opened this run
    def before_pipeline_run(self) -> None:
        active = mlflow.active_run()
        self._run_id = active.info.run_id if active is not None else None

    @hook_impl
    def after_node_run(self, node) -> None:
        if "trained_model" in node.outputs:
            self._record_resume()

    @hook_impl
    def on_pipeline_error(self, error: Exception) -> None:
        if isinstance(interrupt_of(error), TrainingInterrupted):  # stopped at a step: resumed
            self._record_resume()

    def _record_resume(self) -> None:
        continued, self._continued = self._continued, None
        if continued is None or self._run_id is None or continued == self._run_id:
            return
        client = MlflowClient()
        client.set_tag(self._run_id, "resumed_from", continued)
        log.info("this run continues MLflow run %s (tag resumed_from)", continued)
        try:
            previous = client.get_run(continued)
        except mlflow.exceptions.MlflowException:  # a run of another tracking store
            return
        if previous.info.status == "RUNNING" and process_state(previous.data.tags) != "alive":
            client.set_tag(continued, "killed_by", self.LOST)
            client.set_terminated(continued, "KILLED")
            log.warning("MLflow run %s was left RUNNING: marked KILLED", continued)


def _set_parameter(catalog, group: str, key: str, value) -> None:
    """Set parameter ``group.key`` for this run, as if given with ``--params``: in
    ``params:group``, ``params:group.key`` and ``parameters``."""
    catalog[f"params:{group}"] = {**catalog.load(f"params:{group}"), key: value}
    if f"params:{group}.{key}" in catalog:
        catalog[f"params:{group}.{key}"] = value
    parameters = catalog.load("parameters")
    catalog["parameters"] = {**parameters, group: {**parameters[group], key: value}}


class MissingInputError(FileNotFoundError):
    """A pipeline input with no saved version: the pipeline that makes it must run first."""


class MissingInputsHook:
    """A run that reads a versioned dataset with no saved version yet (``kedro run
    --pipelines=extract`` in a fresh clone: no trained model) stops before any node and before
    an MLflow run is opened (``tryfirst``), naming each such dataset and the pipeline that
    makes it, instead of failing in its first node with Kedro's ``Did not find any versions``."""

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        check_inputs_exist(pipeline, catalog, run_params.get("load_versions") or {})


def check_inputs_exist(pipeline, catalog, load_versions: dict | None = None) -> None:
    """Raise :class:`MissingInputError` if an input of ``pipeline`` is a versioned dataset of
    ``catalog`` with no saved version (or without the version ``load_versions`` names), naming
    the smallest registered pipeline that makes them all (one that can run now, if any)."""
    from kedro.framework.project import pipelines as registered

    missing = sorted(name for name in pipeline.inputs() if _unsaved(catalog, name))
    pinned = [name for name in missing if (load_versions or {}).get(name)]
    if pinned:
        raise MissingInputError(
            "; ".join(
                f"version {load_versions[name]} of {name} does not exist"
                f" ({getattr(catalog.get(name), '_filepath', '?')})"
                for name in pinned
            )
        )
    if not missing:
        return
    where = f" ({catalog.get(missing[0])._filepath})" if len(missing) == 1 else ""
    makers = [_pipeline_making(set(missing), registered, catalog)]
    if makers[0] is None:  # no one pipeline makes them all: each its own
        makers = [_pipeline_making({name}, registered, catalog) for name in missing]
    commands = sorted(
        {f"kedro run --pipelines={m}" if m != "__default__" else "kedro run" for m in makers if m}
    )
    raise MissingInputError(
        f"no saved {', '.join(missing)} yet{where}: run "
        + " and ".join(f"`{c}`" for c in commands)
        + f" first, which makes {'it' if len(missing) == 1 else 'them'}"
    )


def _unsaved(catalog, name: str) -> bool:
    dataset = catalog.get(name) if name in catalog else None
    return (
        isinstance(dataset, AbstractVersionedDataset)
        and dataset._version is not None
        and not dataset.exists()
    )


def _pipeline_making(names: set[str], registered, catalog) -> str | None:
    """The smallest registered pipeline that writes all of ``names`` and can run now (its own
    inputs saved), else the smallest that writes them (None: none does)."""
    makers = sorted(
        (len(p.nodes), key, p) for key, p in registered.items() if names <= p.all_outputs()
    )
    ready = [m for m in makers if not any(_unsaved(catalog, i) for i in m[2].inputs())]
    return (ready or makers or [(0, None, None)])[0][1]
