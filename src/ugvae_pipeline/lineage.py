"""What an artifact was made from: the image cache entry of its images.

Group plans hold indices into one set of images, a model is fitted on one, codes and scores
are computed from one. Combined with artifacts of another set (a later ingestion of other data
or other ``data:`` parameters), the indices point at other images and the results are wrong
without any error. So every artifact made from the images records their :class:`Lineage` (the
image cache entry: its key, which names the ``data:`` parameters and source files, and the data
source), and a step that combines artifacts checks that they share one (:func:`common_lineage`).

This module is the plain logic: reading the lineage off the images (a memory map of an entry's
``images.npy``), the check and its message. ``hooks.LineageHook`` stores each artifact's record
beside its catalog version and runs the check before every node.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ugvae_pipeline.data.cache import MANIFEST
from ugvae_pipeline.runs import data_source_label


class LineageMismatch(ValueError):
    """Artifacts made from different images were about to be combined."""


@dataclass(frozen=True)
class Lineage:
    """The images an artifact was made from.

    Attributes:
        image_cache: the key of the image cache entry (a digest of the ``data:`` parameters,
            the decoding packages and the source files).
        data: the data source, as run names give it (``mnist_embedded``,
            ``uci_digits+mnist_embedded``; ``?`` when the entry's manifest is unreadable).
        images: how many images the entry holds.
    """

    image_cache: str
    data: str = "?"
    images: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Any) -> Lineage | None:
        """The record written by :meth:`to_dict`; ``None`` for anything else (no record)."""
        if not isinstance(values, dict) or not isinstance(values.get("image_cache"), str):
            return None
        images = values.get("images")
        return cls(
            values["image_cache"],
            str(values.get("data", "?")),
            images if isinstance(images, int) else None,
        )

    def describe(self) -> str:
        count = "" if self.images is None else f", {self.images} images"
        return f"image cache {self.image_cache} ({self.data}{count})"


def cache_entry_of(images: Any) -> Path | None:
    """The image cache entry folder that ``images`` (a memory map of its ``images.npy``, as the
    ingestion node and the ``images`` dataset give them) were read from; ``None`` otherwise."""
    filename = getattr(images, "filename", None)
    if not isinstance(images, np.memmap) or filename is None:
        return None
    return Path(filename).parent


def data_parameters_of(images: Any) -> dict[str, Any] | None:
    """The ``data:`` parameters (all but ``workers``) the cache entry of ``images`` was built
    with, from its manifest; ``None`` when ``images`` are not from the cache or it is unreadable."""
    folder = cache_entry_of(images)
    if folder is None:
        return None
    try:
        parameters = json.loads((folder / MANIFEST).read_text()).get("parameters")
    except (OSError, ValueError):
        return None
    return parameters if isinstance(parameters, dict) else None


def of_images(images: Any) -> Lineage | None:
    """The lineage of images read from the image cache; ``None`` for any other array."""
    folder = cache_entry_of(images)
    if folder is None:
        return None
    parameters = data_parameters_of(images)
    return Lineage(folder.name, data_source_label(parameters) if parameters else "?", len(images))


def common_lineage(
    step: str,
    lineages: dict[str, Lineage | None],
    reference: Lineage | None = None,
    rebuild: str | None = None,
) -> Lineage | None:
    """The one lineage of the artifacts ``step`` combines (``None`` when none records one).

    Args:
        step: the node about to combine them, for the message.
        lineages: each input's lineage; ``None``: it records none (not made from the images, or
            made before lineage was recorded), left out of the check.
        reference: the lineage of the current images: the inputs that differ from it are the
            ones to rebuild; without it, every input is named.
        rebuild: the command that rebuilds those inputs from the current images.

    Raises:
        LineageMismatch: the inputs were made from different image cache entries; the message
            names which input came from which and how to fix it.
    """
    known = {name: lineage for name, lineage in lineages.items() if lineage is not None}
    if len({lineage.image_cache for lineage in known.values()}) <= 1:
        return next(iter(known.values()), None)
    raise LineageMismatch(mismatch_message(step, known, reference, rebuild))


def mismatch_message(
    step: str,
    lineages: dict[str, Lineage],
    reference: Lineage | None = None,
    rebuild: str | None = None,
    cache_root: str | None = None,
) -> str:
    """Which input came from which images, which to rebuild and how (``common_lineage``);
    ``cache_root``: the image cache folder, to name the manifest of each older entry."""
    by_entry: dict[Lineage, list[str]] = {}
    for name, lineage in lineages.items():
        by_entry.setdefault(lineage, []).append(name)
    lines = [
        f"{step} would combine artifacts made from different images, so its results would be "
        "wrong (group indices pointing at other images, or a model fitted on other images):"
    ]
    lines += [f"  {', '.join(names)}: {lineage.describe()}" for lineage, names in by_entry.items()]
    stale = {
        name: lineage
        for name, lineage in lineages.items()
        if reference is None or lineage.image_cache != reference.image_cache
    }
    older = sorted(set(stale.values()), key=lambda lineage: lineage.image_cache)
    target = "the current images" if reference else "one set of images"
    fix = f"Rebuild {', '.join(stale)} from {target}"
    fix += f": {rebuild} (with the --params they were made with)" if rebuild else ""
    manifests = " or ".join(
        f"{cache_root}/{lineage.image_cache}/manifest.json ({lineage.data})"
        if cache_root
        else f"the manifest.json of image cache {lineage.image_cache} ({lineage.data})"
        for lineage in older
    )
    lines.append(
        f"{fix}. Or make the images they were made from current again: kedro run "
        f"--pipelines=ingestion with the data: parameters recorded in {manifests}."
    )
    return "\n".join(lines)


def check_data_source(step: str, data_params: dict[str, Any], lineage: Lineage) -> None:
    """``step`` reads the ``data:`` parameters beside artifacts made from ``lineage``: they must
    name the data source those images were ingested from (building evaluation groups from
    ``data.source`` of other data, or recording it, would be wrong).

    Raises:
        LineageMismatch: naming both sources and the fix.
    """
    configured = data_source_label(data_params)
    if lineage.data in ("?", configured):
        return
    raise LineageMismatch(
        f"{step} reads data.source={configured} (this run's data: parameters) but the images "
        f"it works on were ingested from {lineage.data} ({lineage.describe()}): run it with the "
        f"data: parameters those images were ingested with (e.g. --params data.source=...), or "
        f"ingest {configured} first (kedro run --pipelines=ingestion) and rebuild what reads it."
    )
