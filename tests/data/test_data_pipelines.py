"""Ingestion, grouping and the evaluation groups (src/ugvae_pipeline/pipelines) on a real DataCatalog."""

from __future__ import annotations

import numpy as np
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.pandas import ParquetDataset

from ugvae_pipeline.datasets import CachedImagesDataset, ImageCacheFolder, NumpyArrayDataset
from ugvae_pipeline.pipeline_registry import register_pipelines

GROUP_OUTPUTS = ("train_groups", "heldout_groups", "evaluation_groups")


def _catalog(tmp_path, params: dict) -> DataCatalog:
    datasets = {f"params:{key}": MemoryDataset(value) for key, value in params.items()}
    datasets["image_cache"] = ImageCacheFolder(path=str(tmp_path / "image_cache"))
    datasets["images"] = CachedImagesDataset(filepath=str(tmp_path / "images.json"))
    datasets["image_metadata"] = ParquetDataset(filepath=str(tmp_path / "image_metadata.parquet"))
    for name in GROUP_OUTPUTS:
        datasets[name] = NumpyArrayDataset(filepath=str(tmp_path / f"{name}.npy"))
    for name in ("heldout_group_metadata", "evaluation_group_metadata"):
        datasets[name] = ParquetDataset(filepath=str(tmp_path / f"{name}.parquet"))
    return DataCatalog(datasets)


def _groups_params(strategy: str, training: str = "random") -> dict:
    return {
        "training": {"strategy": training, "label_column": "label"},
        "heldout": {"n_groups": 2, "group_size": 2, "seed": 0},
        "evaluation": {"strategy": strategy, "random": {"n_groups": 1, "seed": 1}},
        "attribute": {
            "group_types": ["Male=1", "Male=0"],
            "n_groups": 2,
            "group_size": 2,
            "seed": 0,
        },
        "domain": {"n_groups": 2, "group_size": 3, "seed": 0, "p": 0.5, "domains": None},
    }


def _run(tmp_path, celeba_root, image_folder_root, groups: dict) -> DataCatalog:
    data = {
        "source": "mixed",
        "celeba": {"root": str(celeba_root), "image_size": 8},
        "image_folder": {
            "root": str(image_folder_root),
            "image_size": 8,
            "validation_fraction": 0.15,
            "test_fraction": 0.43,
        },
        "mixed": {"sources": ["celeba", "image_folder"]},
    }
    params = {
        "data": data,
        "groups": groups,
        "groups.heldout": groups["heldout"],
        "train": {"group_size": 3, "epochs": 3, "seed": 0},
        "model": {"name": "ugvae"},
    }
    catalog = _catalog(tmp_path, params)
    pipelines = register_pipelines()
    # grouping builds what training reads; extract opens with the evaluation groups
    evaluation_groups = pipelines["extract"].only_nodes("build_evaluation_groups")
    SequentialRunner().run(
        pipelines["ingestion"] + pipelines["grouping"] + evaluation_groups, catalog
    )
    return catalog


def test_attribute_evaluation_groups_from_ingested_celeba_and_folder(
    tmp_path, celeba_root, image_folder_root
):
    catalog = _run(tmp_path, celeba_root, image_folder_root, _groups_params("attribute"))
    images, metadata = catalog.load("images"), catalog.load("image_metadata")
    assert images.shape == (43, 3, 8, 8) and isinstance(images, np.memmap)
    groups, table = catalog.load("evaluation_groups"), catalog.load("evaluation_group_metadata")
    male = metadata["Male"].to_numpy(dtype=bool, na_value=False)
    assert groups.shape == (5, 2)
    assert list(table["group_type"]) == ["Male=1"] * 2 + ["Male=0"] * 2 + ["random"]
    assert male[groups[:2]].all() and not male[groups[2:4]].any()
    assert (
        metadata["domain"].to_numpy()[groups[:4]] == "celeba"
    ).all()  # folder images have no Male value
    assert (metadata["split"].to_numpy()[groups] == "test").all()
    assert list(table["group_id"]) == [0, 1, 2, 3, 4]
    assert catalog.load("train_groups").shape[:1] == (3,)


def test_domain_groups_and_mixed_domain_training_plan(tmp_path, celeba_root, image_folder_root):
    catalog = _run(
        tmp_path, celeba_root, image_folder_root, _groups_params("domain", "mixed_domains")
    )
    metadata = catalog.load("image_metadata")
    table = catalog.load("evaluation_group_metadata")
    assert list(table["group_type"]) == ["celeba"] * 2 + ["image_folder"] * 2 + ["mixed"] * 2 + [
        "random"
    ]
    plan = catalog.load("train_groups")
    domains = metadata["domain"].to_numpy()[plan]
    assert plan.shape[0] == 3 and (metadata["split"].to_numpy()[plan] == "train").all()
    assert {"celeba", "image_folder"} == set(np.unique(domains))
