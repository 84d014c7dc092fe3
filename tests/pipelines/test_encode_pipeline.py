"""`kedro run --pipelines=encode`: one's own groups of images (a folder of groups or a CSV)
encoded with the latest trained model, decoded exactly as ingestion decodes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from mlflow import MlflowClient
from PIL import Image

from tests.conftest import kedro_cli, run_kedro
from tests.data.conftest import image_folder_root  # noqa: F401  (a fixture)
from ugvae_pipeline.data.group_folder import group_files, load_groups
from ugvae_pipeline.data.image_folder import load_image_folder
from ugvae_pipeline.data.imaging import build_image_cache
from ugvae_pipeline.evaluation.encoding import encode_groups_of_any_size
from ugvae_pipeline.models import build_model
from ugvae_pipeline.models.io import load_model
from ugvae_pipeline.parameters import check_group


def _latest(folder: Path) -> Path:
    return sorted(folder.glob("*/*"))[-1]


def _write_groups(root: Path, sizes: dict[str, int], seed: int = 0) -> None:
    """Grayscale images of varied sizes and shapes (so the centre crop matters), one
    sub-folder per group; the last image of each group one level deeper."""
    rng = np.random.default_rng(seed)
    for group, n in sizes.items():
        for i in range(n):
            folder = root / group / ("nested" if i == n - 1 else "")
            folder.mkdir(parents=True, exist_ok=True)
            height, width = rng.integers(20, 60, size=2)
            pixels = rng.integers(0, 256, size=(height, width), dtype=np.uint8)
            Image.fromarray(pixels, "L").save(folder / f"img_{i:02d}.png")


@pytest.fixture
def project_with_model(project_copy, default_run) -> Path:
    """A project copy (its own data and MLflow store) holding the model of ``default_run``,
    copied rather than retrained; ``default_run`` itself is left untouched."""
    shutil.copytree(default_run / "data" / "06_models", project_copy / "data" / "06_models")
    return project_copy


# --- one decoding for ingestion and encode -----------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_encode_decodes_every_image_exactly_as_ingestion(image_folder_root, channels):  # noqa: F811
    ingested, metadata = load_image_folder(image_folder_root, channels=channels, image_size=9)
    by_file = dict(zip(metadata["filename"], ingested))

    images, table = load_groups(image_folder_root, channels, 9)  # top.webp is in no group
    assert list(table["group"]) == ["cats"] * 3 + ["dogs"] * 3
    assert images.shape == (6, channels, 9, 9) and images.dtype == np.uint8
    for file, image in zip(table["file"], images):
        np.testing.assert_array_equal(image, by_file[file])
    # grayscale, RGBA, palette and 16-bit files are all among them
    assert {"cats/gray.png", "cats/transparent.png", "dogs/palette.gif"} <= set(table["file"])
    assert "dogs/nested/wide16.png" in set(table["file"])

    # the function both call, on the files of a CSV (any file under the root, in row order)
    files = ["top.webp", "dogs/nested/wide16.png", "cats/transparent.png", "dogs/palette.gif"]
    pd.DataFrame({"file": files, "group": "mine"}).to_csv(image_folder_root / "g.csv", index=False)
    images, table = load_groups(image_folder_root, channels, 9, groups_csv="g.csv")
    cache, kept = build_image_cache([image_folder_root / f for f in files], channels, 9)
    assert kept.all() and list(table["file"]) == files
    np.testing.assert_array_equal(images, cache)
    np.testing.assert_array_equal(images, np.stack([by_file[f] for f in files]))


def test_a_celeba_crop_size_is_the_one_ingestion_uses(tmp_path):
    from tests.data.conftest import CROP, write_celeba
    from ugvae_pipeline.data.celeba import load_celeba

    write_celeba(tmp_path / "celeba", n_images=3)
    ingested, _ = load_celeba(tmp_path / "celeba", image_size=16, crop_size=CROP)
    images, _ = load_groups(tmp_path, 3, 16, crop_size=CROP)  # one group: celeba/
    np.testing.assert_array_equal(images, ingested)


# --- groups of any size -------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 32])
def test_groups_of_any_size_are_each_encoded_on_their_own_images(chunk):
    torch.manual_seed(0)
    model = build_model({"name": "ugvae", "dim_beta": 4}).eval()
    sizes = np.array([3, 7, 3, 1, 7])
    images = np.random.default_rng(0).integers(0, 256, (sizes.sum(), 1, 28, 28), dtype=np.uint8)
    codes = encode_groups_of_any_size(model, images, sizes, chunk=chunk, progress="off")
    assert codes.global_code.shape == (5, 4) and codes.local_code.shape == (21, 10)
    for group, (start, size) in enumerate(zip(np.cumsum(sizes) - sizes, sizes)):
        x = torch.from_numpy(images[start : start + size]).float().div(255)[None]
        alone = model.encode(x)
        np.testing.assert_allclose(codes.global_code[group], alone.global_mean[0], atol=1e-6)
        np.testing.assert_allclose(codes.global_var[group], alone.global_var[0], atol=1e-6)
        rows = slice(start, start + size)
        np.testing.assert_allclose(codes.local_code[rows], alone.local_mean[0], atol=1e-6)
        np.testing.assert_allclose(codes.mixture_probs[rows], alone.mixture_probs[0], atol=1e-6)


# --- the pipeline end to end --------------------------------------------------------------


@pytest.mark.slow
def test_encode_pipeline_writes_code_tables_equal_to_the_model_encoding(
    project_with_model, tmp_path
):
    project = project_with_model
    root = tmp_path / "my groups"
    _write_groups(root, {"small": 3, "large": 7})
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(root / "loose.png")  # in no group
    done = kedro_cli(project, "--pipelines=encode", "--params", f"encode.root={root}")
    assert "belong to no group" in done.stderr + done.stdout

    out = project / "data" / "07_model_output"
    global_codes = pd.read_parquet(_latest(out / "encoded_global_codes.parquet"))
    local_codes = pd.read_parquet(_latest(out / "encoded_local_codes.parquet"))
    model = load_model(_latest(project / "data" / "06_models" / "model.pt"))
    dim_beta, dim_z, k = model.config.dim_beta, model.config.dim_z, model.config.n_components
    assert global_codes.shape == (2, 2 + 2 * dim_beta)
    assert list(global_codes.columns[:3]) == ["group", "n_images", "global_mean_00"]
    assert global_codes[["group", "n_images"]].values.tolist() == [["large", 7], ["small", 3]]
    assert local_codes.shape == (10, 3 + dim_z + k + 1)
    assert list(local_codes.columns[:4]) == ["group", "file", "position", "local_mean_00"]
    assert local_codes["file"].iloc[6] == "large/nested/img_06.png"
    assert np.allclose(local_codes.filter(like="mixture_prob_").sum(1), 1, atol=1e-5)

    # the codes are model.encode of each group's images, decoded by the shared function
    channels, size = model.config.channels, model.config.image_size
    for row in global_codes.itertuples():
        files = local_codes.loc[local_codes["group"] == row.group, "file"]
        images, kept = build_image_cache([root / f for f in files], channels, size)
        assert kept.all() and len(images) == row.n_images
        encoding = model.encode(torch.from_numpy(images).float().div(255)[None])
        mean = global_codes.loc[row.Index].filter(like="global_mean_").to_numpy(np.float32)
        var = global_codes.loc[row.Index].filter(like="global_var_").to_numpy(np.float32)
        np.testing.assert_allclose(mean, encoding.global_mean[0].numpy(), atol=1e-6)
        np.testing.assert_allclose(var, encoding.global_var[0].numpy(), atol=1e-6)
        local = local_codes.loc[files.index].filter(like="local_mean_").to_numpy(np.float32)
        np.testing.assert_allclose(local, encoding.local_mean[0].numpy(), atol=1e-6)

    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ugvae_pipeline")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.metrics["encode_groups"] == 2 and run.data.metrics["encode_images"] == 10
    assert run.data.metrics["encode_skipped_images"] == 0
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "encode")}
    assert logged == {"encode/encoded_global_codes.parquet", "encode/encoded_local_codes.parquet"}


def test_encode_is_registered_apart_from_the_default_chain(project_copy, monkeypatch):
    from kedro.framework.project import pipelines
    from kedro.framework.startup import bootstrap_project

    # bootstrap_project adds the project's src/ to PYTHONPATH: monkeypatch records it as it
    # is now (set or not) and puts it back after
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    if os.environ["PYTHONPATH"] == "":
        monkeypatch.delenv("PYTHONPATH")
    bootstrap_project(project_copy)
    assert {n.name for n in pipelines["encode"].nodes} == {"encode_own_groups"}
    assert pipelines["encode"].nodes[0].tags == {"encode"}
    assert "encode_own_groups" not in {n.name for n in pipelines["__default__"].nodes}


# --- errors, before anything is encoded ---------------------------------------------------


def test_a_missing_root_or_an_empty_folder_fails_naming_what_to_do(project_with_model, tmp_path):
    with pytest.raises(ValueError, match=r"encode.root is not set: pass --params encode.root="):
        run_kedro(project_with_model, "encode", {})
    with pytest.raises(FileNotFoundError, match=r"encode.root .*nowhere does not exist"):
        run_kedro(project_with_model, "encode", {"encode": {"root": str(tmp_path / "nowhere")}})
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no group sub-folder .*one sub-folder per group"):
        run_kedro(project_with_model, "encode", {"encode": {"root": str(tmp_path / "empty")}})
    assert not (project_with_model / "data" / "07_model_output").exists()


def test_layout_errors_name_the_group_the_file_or_the_column(tmp_path):
    _write_groups(tmp_path, {"a": 2, "b": 1})
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "notes.txt").write_text("no image here")
    with pytest.raises(FileNotFoundError, match=r"group folder\(s\) \['c'\] .* hold no image"):
        group_files(tmp_path)
    shutil.rmtree(tmp_path / "c")

    (tmp_path / "b" / "nested" / "broken.png").write_text("not a PNG")
    with pytest.raises(
        ValueError, match=r"cannot read image .*broken.png.*encode.skip_bad_images=true"
    ):
        load_groups(tmp_path, 1, 28)
    images, table = load_groups(tmp_path, 1, 28, skip_bad_images=True)
    assert len(images) == 3 and table.attrs["skipped_images"] == 1
    (tmp_path / "b" / "nested" / "img_00.png").unlink()
    with pytest.raises(ValueError, match=r"group\(s\) \['b'\] have no readable image"):
        load_groups(tmp_path, 1, 28, skip_bad_images=True)

    (tmp_path / "g.csv").write_text("path,group\na/img_00.png,x\n")
    with pytest.raises(
        ValueError, match=r"lacks column\(s\) \['file'\]; it has \['path', 'group'\]"
    ):
        group_files(tmp_path, "g.csv")
    (tmp_path / "g.csv").write_text("file,group\na/img_00.png,x\na/gone.png,y\n")
    with pytest.raises(FileNotFoundError, match=r"lists 1 file\(s\) not found .*\['a/gone.png'\]"):
        group_files(tmp_path, "g.csv")
    # groups in order of first appearance, a file may be in two groups, rows of a group together
    rows = ["file,group", "a/img_00.png,y", "a/nested/img_01.png,x", "a/img_00.png,x"]
    (tmp_path / "g.csv").write_text("\n".join(rows) + "\n")
    table = group_files(tmp_path, tmp_path / "g.csv")
    assert table.values.tolist() == [
        ["y", "a/img_00.png"],
        ["x", "a/nested/img_01.png"],
        ["x", "a/img_00.png"],
    ]
    with pytest.raises(FileNotFoundError, match=r"encode.groups_csv .*other.csv does not exist"):
        group_files(tmp_path, "other.csv")


def test_encode_parameters_are_typed():
    check_group("encode", {"root": None, "groups_csv": None, "skip_bad_images": False})
    with pytest.raises(ValueError, match=r"unknown parameter encode.rot; valid names there: "):
        check_group("encode", {"rot": "/data"})
    with pytest.raises(ValueError, match=r"encode.groups_per_chunk must be an integer >= 1"):
        check_group("encode", {"groups_per_chunk": 0})
