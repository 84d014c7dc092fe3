"""Ingestion + structured grouping pipelines (src/ugvae_pipeline/pipelines) on a real DataCatalog."""

from __future__ import annotations

import numpy as np
import pandas as pd
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.pandas import ParquetDataset

from ugvae_pipeline.datasets import NumpyArrayDataset
from ugvae_pipeline.pipeline_registry import register_pipelines


def _catalog(tmp_path, params: dict, outputs: list[str]) -> DataCatalog:
    datasets = {f"params:{key}": MemoryDataset(value) for key, value in params.items()}
    datasets["images"] = NumpyArrayDataset(filepath=str(tmp_path / "images.npy"), mmap=True)
    datasets["image_metadata"] = ParquetDataset(filepath=str(tmp_path / "image_metadata.parquet"))
    for name in outputs:
        datasets[f"{name}_groups"] = NumpyArrayDataset(filepath=str(tmp_path / f"{name}_groups.npy"))
        datasets[f"{name}_group_metadata"] = ParquetDataset(filepath=str(tmp_path / f"{name}_group_metadata.parquet"))
    return DataCatalog(datasets)


def test_structured_groups_from_ingested_celeba_and_folder(tmp_path, celeba_root, image_folder_root):
    data = {
        "source": "mixed",
        "celeba": {"root": str(celeba_root), "image_size": 8},
        "image_folder": {"root": str(image_folder_root), "image_size": 8, "heldout_fraction": 0.5},
        "mixed": {"sources": ["celeba", "image_folder"]},
    }
    params = {
        "data": data,
        "groups.attribute": {"group_types": ["Male=1", "Male=0"], "n_groups": 2, "group_size": 2, "seed": 0},
        "groups.domain": {"n_groups": 2, "group_size": 3, "seed": 0, "p": 0.5, "domains": None},
    }
    catalog = _catalog(tmp_path, params, ["attribute", "domain"])
    pipelines = register_pipelines()
    SequentialRunner().run(pipelines["ingestion"], catalog)
    SequentialRunner().run(pipelines["attribute_groups"] + pipelines["domain_groups"], catalog)

    images, metadata = catalog.load("images"), catalog.load("image_metadata")
    assert images.shape == (43, 3, 8, 8) and isinstance(images, np.memmap)
    groups, table = catalog.load("attribute_groups"), catalog.load("attribute_group_metadata")
    male = metadata["Male"].to_numpy(dtype=bool, na_value=False)
    assert groups.shape == (4, 2) and male[groups[:2]].all() and not male[groups[2:]].any()
    assert (metadata["domain"].to_numpy()[groups] == "celeba").all()  # the folder images have no Male value
    domain_table = catalog.load("domain_group_metadata")
    assert list(domain_table["group_type"]) == ["celeba"] * 2 + ["image_folder"] * 2 + ["mixed"] * 2
    assert isinstance(domain_table, pd.DataFrame) and catalog.load("domain_groups").shape == (6, 3)


def test_domain_alignment_training_groups_replace_random_ones():
    pipeline = register_pipelines()["train_domain_alignment"]
    names = {node.name for node in pipeline.nodes}
    assert "build_domain_training_groups" in names and "build_training_groups" not in names
    assert "train_ugvae" in names and "ingest_images" in names
    default = register_pipelines()["train"]
    assert "build_training_groups" in {node.name for node in default.nodes}
