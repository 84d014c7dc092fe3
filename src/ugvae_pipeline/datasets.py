"""Kedro datasets for the project's artifacts: uint8/int arrays, the image cache, trained
models, figures, and the tables, JSON and text of ``kedro_datasets`` with all-or-nothing saves.

Every file dataset of the catalog writes through :class:`AtomicFileSystem`: a new file is
written under a temporary name in its folder and renamed into place when complete, so a kill
at any moment leaves the previous version or the new one, never a partial file.

Both are versioned like any Kedro dataset (``versioned: true`` in the catalog) and never
unpickle: arrays are ``.npy`` files loaded with ``allow_pickle=False`` (memory-mapped on the
local filesystem, so a large image cache is not read into memory), models are config +
``state_dict`` files loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from collections.abc import Iterator
from copy import deepcopy
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
import numpy as np
from fsspec.implementations.local import LocalFileSystem
from kedro.io import AbstractDataset, AbstractVersionedDataset
from kedro.io.core import DatasetError, Version, get_filepath_str, get_protocol_and_path
from kedro_datasets import json as json_datasets
from kedro_datasets import pandas as pandas_datasets
from kedro_datasets import text as text_datasets
from kedro_datasets.matplotlib import MatplotlibDataset

from ugvae_pipeline.data.cache import ImageCache
from ugvae_pipeline.models.io import CorruptModelFile, load_model, save_model

log = logging.getLogger(__name__)


class AtomicFileSystem:
    """An fsspec filesystem whose files opened for writing (``w`` modes) go to
    ``.<name>.partial-<pid>`` in the same folder and are renamed into place once closed
    without error (``os.replace`` on the local filesystem: atomic); a failure or a kill leaves
    no file under the name. Everything else is the wrapped filesystem's."""

    def __init__(self, fs) -> None:
        self._fs = fs

    def __getattr__(self, name: str) -> Any:
        if name == "_fs" or name.startswith("__"):  # copy/pickle probe before _fs is set
            raise AttributeError(name)
        return getattr(self._fs, name)

    def open(self, path: str, mode: str = "rb", **kwargs: Any):
        if "w" not in mode:
            return self._fs.open(path, mode=mode, **kwargs)
        return self._write(str(path), mode, **kwargs)

    @contextlib.contextmanager
    def _write(self, path: str, mode: str, **kwargs: Any) -> Iterator[Any]:
        folder, name = path.rsplit("/", 1)
        partial = f"{folder}/.{name}.partial-{os.getpid()}"
        try:
            with self._fs.open(partial, mode=mode, **kwargs) as handle:
                yield handle
            if isinstance(self._fs, LocalFileSystem):
                os.replace(partial, path)
            else:
                self._fs.mv(partial, path)
        except BaseException:
            with contextlib.suppress(Exception):  # the original error is the one to see
                self._fs.rm(partial)
            raise


class _AtomicSaves:
    """Mixin for a ``kedro_datasets`` file dataset: its ``_fs`` becomes an AtomicFileSystem."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fs = AtomicFileSystem(self._fs)


class ParquetDataset(_AtomicSaves, pandas_datasets.ParquetDataset):
    """``pandas.ParquetDataset`` with all-or-nothing saves."""


class CSVDataset(_AtomicSaves, pandas_datasets.CSVDataset):
    """``pandas.CSVDataset`` with all-or-nothing saves."""


class JSONDataset(_AtomicSaves, json_datasets.JSONDataset):
    """``json.JSONDataset`` with all-or-nothing saves."""


class TextDataset(_AtomicSaves, text_datasets.TextDataset):
    """``text.TextDataset`` with all-or-nothing saves."""


class _VersionedFileDataset(AbstractVersionedDataset):
    """One file per version on any fsspec filesystem; subclasses say how bytes map to objects."""

    def __init__(
        self,
        *,
        filepath: str,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        protocol, path = get_protocol_and_path(filepath, version)
        self._protocol = protocol
        fs_args = deepcopy(fs_args) or {}
        if protocol == "file":
            fs_args.setdefault("auto_mkdir", True)
        self._fs = AtomicFileSystem(fsspec.filesystem(protocol, **(credentials or {}), **fs_args))
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "protocol": self._protocol, "version": self._version}

    def _exists(self) -> bool:
        try:
            path = get_filepath_str(self._get_load_path(), self._protocol)
        except DatasetError:
            return False
        return self._fs.exists(path)

    @contextlib.contextmanager
    def _open_for_write(self) -> Iterator[Any]:
        """A binary handle on the new version's file, renamed into place once complete (see
        AtomicFileSystem); the listing cache is refreshed after."""
        path = get_filepath_str(self._get_save_path(), self._protocol)
        with self._fs.open(path, mode="wb") as handle:
            yield handle
        self._fs.invalidate_cache(get_filepath_str(self._filepath, self._protocol))

    def _write_bytes(self, payload: bytes) -> None:
        with self._open_for_write() as handle:
            handle.write(payload)

    def _load_path(self) -> str:
        return get_filepath_str(self._get_load_path(), self._protocol)


class NumpyArrayDataset(_VersionedFileDataset):
    """A NumPy array in ``.npy`` format, without pickle.

    Args:
        mmap: on the local filesystem, load as a read-only memory map (bounded memory for
            large image caches); elsewhere the file is read into memory.
    """

    def __init__(self, *, filepath: str, mmap: bool = False, **kwargs: Any) -> None:
        super().__init__(filepath=filepath, **kwargs)
        self._mmap = mmap

    def load(self) -> np.ndarray:
        path = self._load_path()
        try:
            if self._mmap and self._protocol == "file":
                return np.load(path, mmap_mode="r", allow_pickle=False)
            with self._fs.open(path, mode="rb") as handle:
                return np.load(io.BytesIO(handle.read()), allow_pickle=False)
        except (
            ValueError,
            EOFError,
            OSError,
        ) as err:  # e.g. "mmap length is greater than file size"
            folder = path.rsplit("/", 2)[0]
            raise DatasetError(
                f"{path} is truncated or not a .npy file ({err}); it was cut short by an earlier "
                f"version of this project or by hand. Delete its version folder "
                f"{path.rsplit('/', 1)[0]} and the next run loads the previous version in {folder}"
            ) from err

    def save(self, data: np.ndarray) -> None:
        # Streamed into the file (numpy writes large arrays in chunks): no in-memory copy.
        with self._open_for_write() as handle:
            np.save(handle, np.asarray(data), allow_pickle=False)


class ImageCacheFolder(AbstractDataset):
    """The folder of decoded image caches (``data/cache.py``), loaded as an ``ImageCache`` for
    the ingestion node to reuse or fill. Entries are named by content key, never replaced."""

    def __init__(self, *, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = path
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path}

    def load(self) -> ImageCache:
        return ImageCache(self._path)

    def save(self, data: Any) -> None:
        raise DatasetError("the image cache folder is filled by ImageCache, not saved to")


class CachedImagesDataset(_VersionedFileDataset):
    """Images kept in the image cache: each version is a small JSON record naming the cache
    entry a run used (its key, file, shape), loaded as a read-only memory map of that entry.

    Saving takes the memory map the cache returned (``np.load(..., mmap_mode="r")``) and
    writes only the record, so a run that reuses the cache adds no image bytes.
    """

    def save(self, data: np.ndarray) -> None:
        filename = getattr(data, "filename", None)
        if not isinstance(data, np.memmap) or filename is None:
            raise DatasetError(
                "CachedImagesDataset saves images read from the image cache (a memory map of its "
                f"images.npy), got {type(data).__name__}; use NumpyArrayDataset for other arrays"
            )
        folder = _folder_of(get_filepath_str(self._get_save_path(), self._protocol))
        record = {
            "cache_key": Path(filename).parent.name,
            "file": os.path.relpath(filename, folder),
            "shape": list(data.shape),
            "dtype": data.dtype.str,
        }
        self._write_bytes(json.dumps(record, indent=2).encode())

    def load(self) -> np.ndarray:
        path = self._load_path()
        with self._fs.open(path, mode="rb") as handle:
            record = json.loads(handle.read())
        images_path = os.path.normpath(os.path.join(_folder_of(path), record["file"]))
        try:
            images = np.load(images_path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as err:
            raise DatasetError(
                f"{path} names the image cache entry {images_path}, which is gone or unreadable "
                f"({err}); run the ingestion pipeline again (kedro run --pipelines=ingestion) to "
                "rebuild it"
            ) from err
        if list(images.shape) != record["shape"]:
            raise DatasetError(
                f"{images_path} holds images {list(images.shape)} but {path} recorded "
                f"{record['shape']}; run the ingestion pipeline again to rebuild it"
            )
        return images


def _folder_of(path: str) -> str:
    """The absolute folder of a record: the cache file it names is relative to it."""
    return os.path.dirname(os.path.abspath(path))


class TorchModelDataset(_VersionedFileDataset):
    """A trained model: config + ``state_dict``, loaded safely and returned in eval mode."""

    def load(self):
        path = self._load_path()
        try:
            with self._fs.open(path, mode="rb") as handle:
                return load_model(handle.read())
        except CorruptModelFile as err:
            folder = path.rsplit("/", 1)[0]
            cause = err.__cause__
            raise DatasetError(
                f"{path} is truncated or corrupt ({type(cause).__name__}: {str(cause)[:200]}); "
                f"the version folder {folder} holds no loadable model. Delete that folder and the "
                f"next run loads the previous version in {folder.rsplit('/', 1)[0]}, or train "
                "again (kedro run --pipelines=training)"
            ) from err

    def save(self, model) -> None:
        buffer = io.BytesIO()
        save_model(model, buffer)
        self._write_bytes(buffer.getvalue())


class FigureDataset(_AtomicSaves, MatplotlibDataset):
    """A matplotlib figure saved as PNG that loads back as the PNG's bytes.

    Saving is ``matplotlib.MatplotlibDataset``'s (so kedro-viz previews the image), all or
    nothing; loading gives the bytes of the version just written, for reports that embed the
    figures.
    """

    def load(self) -> bytes:
        load_path = get_filepath_str(self._get_load_path(), self._protocol)
        with self._fs.open(load_path, mode="rb") as png:
            return png.read()


class MlflowGroupCodesModelDataset(AbstractDataset):
    """Logs a trained model to the active MLflow run as a servable pyfunc model
    (``serving.GroupCodesModel``: groups of images in, their codes out) with its signature and
    this package as code, and registers it in the tracking store's Model Registry under a name
    that says the model, the data and the input shape (``registered_name``), the run's
    parameters as the version's tags, so every version under one name takes the same input.
    Without an active run (tracking off) it logs nothing, with a warning.

    Args:
        name: the model's artifact name in the run.
        registered_name: the registered model's name, a template of ``{model}``, ``{name}``,
            ``{source}`` and ``{shape}`` that must hold ``{shape}`` (``serving.REGISTERED_NAME``:
            ``{model}-{source}-{shape}``, e.g. ``ugvae-variant-mnist_embedded-1x28x28``);
            checked when the catalog is built, before any node runs. ``{source}`` is the data
            source the model's provenance records, else the run's logged ``data.source``.
        pip_requirements: what a fresh environment installs to load it.
    """

    def __init__(
        self,
        *,
        name: str = "group_codes",
        registered_name: str | None = None,
        pip_requirements: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        from ugvae_pipeline.serving import REGISTERED_NAME, check_registered_name

        try:
            self._registered_name = check_registered_name(registered_name or REGISTERED_NAME)
        except ValueError as err:
            raise DatasetError(f"mlflow_model: {err}") from err
        self._name = name
        self._pip_requirements = pip_requirements
        self._logged_uri: str | None = None
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"name": self._name, "logged": self._logged_uri}

    def save(self, model) -> None:
        import mlflow
        from mlflow import MlflowClient

        from ugvae_pipeline.serving import GroupCodesModel, registered_model_name

        run = mlflow.active_run()
        if run is None:
            log.warning("no active MLflow run: the servable model is not logged")
            return
        wrapper = GroupCodesModel(model)
        package = str(Path(__file__).resolve().parent)  # ugvae_pipeline, shipped as code
        source = _data_source(model, MlflowClient().get_run(run.info.run_id))
        registered = registered_model_name(model, source, self._registered_name)
        info = mlflow.pyfunc.log_model(
            name=self._name,
            python_model=wrapper,
            signature=wrapper.signature(),
            code_paths=[package],
            pip_requirements=self._pip_requirements,
            registered_model_name=registered,
        )
        self._logged_uri = info.model_uri
        client = MlflowClient()
        version = info.registered_model_version
        for key, value in client.get_run(run.info.run_id).data.params.items():
            client.set_model_version_tag(registered, str(version), key, value)
        log.info(
            "logged the servable model %s, registered as %s version %s",
            info.model_uri,
            registered,
            version,
        )

    def load(self):
        import mlflow

        if self._logged_uri is None:
            raise DatasetError(
                "the servable model is logged by a run, not read back: see MLflow's registry"
            )
        return mlflow.pyfunc.load_model(self._logged_uri)


def _data_source(model, run) -> str:
    """The data source a model was trained on, for its registered name: the one its provenance
    records (the image cache entry it was fitted on), else the run's logged ``data.source`` (a
    mixed source's domains joined by ``+``), else ``unknown_source`` with a warning."""
    import ast

    from ugvae_pipeline.runs import data_source_label

    lineage = (getattr(model, "provenance", None) or {}).get("lineage") or {}
    if isinstance(lineage, dict) and lineage.get("data") not in (None, "", "?"):
        return str(lineage["data"])
    params = run.data.params
    if "data.source" not in params:
        log.warning(
            "neither the model nor run %s records its data source: the model is registered "
            "with source 'unknown_source' (set the catalog's mlflow_model.registered_name "
            "without {source} to leave it out)",
            run.info.run_id,
        )
        return "unknown_source"
    data: dict[str, Any] = {"source": params["data.source"]}
    with contextlib.suppress(ValueError, SyntaxError):  # logged as the str of a list
        data["mixed"] = {"sources": ast.literal_eval(params.get("data.mixed.sources", "[]"))}
    return data_source_label(data)
