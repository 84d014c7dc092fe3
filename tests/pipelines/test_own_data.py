"""The README's own-data command on folders of unlabelled images: evaluation groups the source
can build (sub-folders, or random groups only), chosen by the source."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.conftest import kedro_cli

README_COMMAND = (
    "data.source=image_folder,data.image_folder.root={root},model.architecture=conv64,"
    "model.channels=3,model.image_size=64"
)
TINY = (
    "train.epochs=1,train.group_size=8,train.progress=log,groups.heldout.n_groups=1,"
    "groups.heldout.group_size=4,groups.folder.n_groups=2,groups.folder.group_size=4,"
    "groups.evaluation.random.n_groups=2,figures.n_groups=1,figures.n_images=4"
)


def _write_images(folder, n, colour, rng):
    folder.mkdir(parents=True)
    for i in range(n):
        pixels = np.clip(rng.normal(colour, 30, (64, 64, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:03d}.png")


def _latest(path):
    return sorted(path.glob("*/*"))[-1]


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["sub_folders", "flat"])
def test_the_readme_own_data_command_trains_on_unlabelled_images(project_copy, tmp_path, layout):
    rng = np.random.default_rng(0)
    root = tmp_path / "my_images"
    if layout == "sub_folders":
        _write_images(root / "cats", 40, (200, 120, 60), rng)
        _write_images(root / "dogs", 40, (60, 90, 200), rng)
    else:
        _write_images(root, 80, (128, 128, 128), rng)
    params = README_COMMAND.format(root=root) + "," + TINY
    done = kedro_cli(project_copy, "--pipelines=train", "--params", params)
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
