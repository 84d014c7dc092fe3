"""The README's own-data command on folders of unlabelled images: evaluation groups the source
can build (sub-folders, or random groups only), chosen by the source; a small folder trains
with the group size asked for; group sizes its splits cannot fill are refused naming the
parameter that set them, before training."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from kedro.framework.cli.utils import _split_params
from mlflow import MlflowClient
from PIL import Image

from tests.conftest import kedro_cli, run_kedro

README_COMMAND = (
    "data.source=image_folder,data.image_folder.root={root},model.architecture=conv64,"
    "model.channels=3,model.image_size=64"
)
TINY = (
    "train.epochs=1,train.group_size=8,train.progress=log,groups.heldout.n_groups=1,"
    "groups.heldout.group_size=4,groups.folder.n_groups=2,groups.folder.group_size=4,"
    "groups.evaluation.random.n_groups=2,figures.n_groups=1,figures.n_images=4"
)
# what a user with a small folder asks for: a group size, and nothing else about groups
SMALL = "train.group_size=16,train.epochs=1,train.progress=log"


def _write_images(folder, n, colour, rng):
    folder.mkdir(parents=True)
    for i in range(n):
        pixels = np.clip(rng.normal(colour, 30, (64, 64, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:03d}.png")


def _two_folders(root, n_each):
    rng = np.random.default_rng(0)
    _write_images(root / "cats", n_each, (200, 120, 60), rng)
    _write_images(root / "dogs", n_each, (60, 90, 200), rng)
    return root


def _latest(path):
    return sorted(path.glob(f"*/{path.name}"))[-1]


def _versions(path) -> int:
    return len(list(path.glob(f"*/{path.name}")))


def _params(root, extra: str) -> dict:
    """``README_COMMAND`` + ``extra`` parsed as ``kedro run --params`` parses them."""
    return _split_params(None, None, f"{README_COMMAND.format(root=root)},{extra}")


def _runs(project):
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ugvae_pipeline")
    return client.search_runs([experiment.experiment_id]) if experiment else []


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["sub_folders", "flat"])
def test_the_readme_own_data_command_trains_on_unlabelled_images(project_copy, tmp_path, layout):
    rng = np.random.default_rng(0)
    root = tmp_path / "my_images"
    if layout == "sub_folders":
        _two_folders(root, 40)
    else:
        _write_images(root, 80, (128, 128, 128), rng)
    params = README_COMMAND.format(root=root) + "," + TINY
    done = kedro_cli(project_copy, "--pipelines=train,extract", "--params", params)
    data = project_copy / "data"
    assert _latest(data / "06_models" / "model.pt").stat().st_size > 0
    table = pd.read_parquet(_latest(data / "03_primary" / "evaluation_group_metadata.parquet"))
    split = pd.read_parquet(_latest(data / "02_intermediate" / "image_metadata.parquet"))["split"]
    assert set(split) == {"train", "validation", "test"}
    if layout == "sub_folders":  # one group type per sub-folder, beside the random groups
        assert table["group_type"].value_counts().to_dict() == {
            "folder=cats": 2,
            "folder=dogs": 2,
            "random": 2,
        }
    else:  # nothing structured to build: random groups only, and the log says why
        assert list(table["group_type"]) == ["random", "random"]
        log = " ".join((done.stdout + done.stderr).split())  # the log wraps long lines
        assert "no folder groups, only random ones" in log


@pytest.mark.slow
@pytest.mark.parametrize("n_each", [40, 200])
def test_a_small_folder_trains_with_the_group_size_asked_for(project_copy, tmp_path, n_each):
    """80 images (validation 8, test 16) or 400 (validation 40, test 80) with
    ``train.group_size=16`` and every group parameter at its default: a trained model. The
    held-out groups take the training group size, at most the validation images; the
    evaluation groups (64 images by default) are neither built nor needed."""
    root = _two_folders(tmp_path / "my_images", n_each)
    params = README_COMMAND.format(root=root) + "," + SMALL
    done = kedro_cli(project_copy, "--pipelines=train", "--params", params)
    data = project_copy / "data"
    assert _latest(data / "06_models" / "model.pt").stat().st_size > 0
    metadata = pd.read_parquet(_latest(data / "02_intermediate" / "image_metadata.parquet"))
    n_validation = int((metadata["split"] == "validation").sum())
    assert n_validation == 2 * n_each // 10
    heldout = np.load(_latest(data / "03_primary" / "heldout_groups.npy"))
    assert heldout.shape == (7, min(16, n_validation))  # groups.heldout.n_groups: 7
    assert (metadata["split"].to_numpy()[heldout] == "validation").all()
    assert not (data / "03_primary" / "evaluation_groups.npy").exists()
    log = " ".join((done.stdout + done.stderr).split())
    assert ("held-out groups of 8 images" in log) == (n_validation < 16)
    history = pd.read_csv(_latest(data / "08_reporting" / "training_history.csv"))
    assert history["heldout_loss"].notna().all()


@pytest.mark.slow
def test_group_sizes_the_splits_cannot_fill_are_refused_naming_their_parameter_before_training(
    project_copy, tmp_path
):
    """80 images: 56 train, 8 validation, 16 test. Each size too large for its split stops the
    run naming the parameter that set it and the images there are; a full ``kedro run`` stops
    on its evaluation groups before any group is built or any training starts, whatever order
    the runner takes among the nodes that are ready."""
    root = _two_folders(tmp_path / "my_images", 40)
    data = project_copy / "data"
    model = data / "06_models" / "model.pt"
    with pytest.raises(ValueError) as err:  # the folder groups' size (64) sizes the random ones
        run_kedro(project_copy, "__default__", _params(root, SMALL))
    assert (
        "group size 64 is larger than the 16 test images (groups.evaluation.random draws random "
        "groups of the size of the folder groups); set groups.folder.group_size (now 64) to at "
        "most 16, set groups.evaluation.random.n_groups=0, or use more images"
    ) in " ".join(str(err.value).split())
    assert (data / "02_intermediate" / "image_metadata.parquet").exists()
    assert not (data / "03_primary").exists()  # ingested, then stopped before any group
    for extra, message in [
        (
            "train.group_size=64",
            "group size 64 is larger than the 56 training images; "
            "set train.group_size (now 64) to at most 56",
        ),
        (
            f"{SMALL},groups.heldout.group_size=12",
            "group size 12 is larger than the 8 validation images; "
            "set groups.heldout.group_size (now 12) to at most 8",
        ),
    ]:
        with pytest.raises(ValueError) as err:
            run_kedro(project_copy, "train", _params(root, extra))
        assert message in " ".join(str(err.value).split()), extra
    assert not model.exists()
    runs = _runs(project_copy)
    assert [r.info.status for r in runs] == ["FAILED"] * 3
    assert not any("train_loss" in r.data.metrics for r in runs)

    # the same folder trains with --pipelines=train; then a threaded run of training and the
    # evaluation, whose nodes train_model and build_evaluation_groups are ready together,
    # refuses the evaluation groups before training starts a second model
    kedro_cli(
        project_copy,
        "--pipelines=train",
        "--params",
        README_COMMAND.format(root=root) + "," + SMALL,
    )
    assert _versions(model) == 1
    threaded = subprocess.run(
        [sys.executable, "-m", "kedro", "run", "--runner=ThreadRunner"]
        + ["--pipelines=training,extract,evaluate", "--params"]
        + [README_COMMAND.format(root=root) + "," + SMALL],
        cwd=project_copy,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"},
    )
    assert threaded.returncode != 0
    assert "set groups.folder.group_size (now 64) to at most 16" in " ".join(
        threaded.stderr.split()
    )
    assert _versions(model) == 1  # no second model trained
