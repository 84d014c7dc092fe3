"""The servable model: every training run logs and registers it, and `mlflow models serve`
answers a REST request with the codes the encode pipeline computes for the same groups."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.io.core import Version
from mlflow import MlflowClient
from PIL import Image

from tests.conftest import DEFAULT_TINY, cli_params, kedro_cli, server_process
from tests.ui.browser import free_port
from ugvae_pipeline.datasets import CachedImagesDataset

SIZES = {"threes": 5, "mixed": 3}  # groups of different sizes


def _post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(
        url, json.dumps(payload).encode(), {"Content-Type": "application/json"}
    )
    return json.loads(urllib.request.urlopen(request, timeout=120).read())


@pytest.mark.slow
def test_the_registered_model_serves_the_codes_the_encode_pipeline_computes(project_copy, tmp_path):
    kedro_cli(project_copy, "--params", cli_params(DEFAULT_TINY))  # the whole chain, as `kedro run`
    store = f"sqlite:///{project_copy / 'mlflow.db'}"
    client = MlflowClient(store)
    (version,) = client.search_model_versions("name='ugvae'")  # one registered model per model.name
    assert (
        str(version.version) == "1" and version.tags["train.epochs"] == "1"
    )  # the run's parameters
    run = client.get_run(version.run_id)
    assert run.data.tags["mlflow.runName"] == "ugvae-variant-mnist_embedded-random-s1"

    # a folder of two groups of real digits, written as PNGs, encoded by the pipeline
    rng = np.random.default_rng(0)
    images = CachedImagesDataset(
        filepath=str(project_copy / "data" / "02_intermediate" / "images.json"),
        version=Version(None, None),
    ).load()
    root = tmp_path / "groups"
    picks = {}
    for group, size in SIZES.items():
        (root / group).mkdir(parents=True)
        picks[group] = rng.choice(len(images), size, replace=False)
        for i, index in enumerate(picks[group]):
            Image.fromarray(images[index, 0]).save(root / group / f"{i}.png")
    kedro_cli(project_copy, "--pipelines=encode", "--params", f"encode.root={root}")
    encoded = pd.read_parquet(
        sorted(
            (project_copy / "data" / "07_model_output" / "encoded_global_codes.parquet").glob("*/*")
        )[-1]
    )

    port = free_port()
    bin_dir = str(Path(sys.executable).parent)  # the scoring server's uvicorn
    env = {"MLFLOW_TRACKING_URI": store, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/ugvae/1"]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    with server_process(command, port, "/ping", tmp_path, env, wait=180) as base:
        columns = ["group"] + [f"pixel_{i:05d}" for i in range(28 * 28)]
        rows = [
            [group] + list(images[index, 0].reshape(-1) / 255.0)
            for group, idx in picks.items()
            for index in idx
        ]
        frame = {"columns": columns, "data": rows}
        answer = _post(f"{base}/invocations", {"dataframe_split": frame})
        local = _post(
            f"{base}/invocations", {"dataframe_split": frame, "params": {"codes": "local"}}
        )

    served = pd.DataFrame(answer["predictions"]).set_index("group")
    assert served["n_images"].to_dict() == SIZES
    means = [c for c in encoded if c.startswith("global_")]
    assert len(means) == 2 * 32  # mu and var of dim_beta 32
    expected = encoded.set_index("group").loc[list(SIZES), means].to_numpy(np.float64)
    np.testing.assert_allclose(
        served.loc[list(SIZES), means].to_numpy(np.float64), expected, rtol=1e-5, atol=1e-6
    )
    assert (
        len(local["predictions"]) == sum(SIZES.values())
        and "mixture_prob_29" in local["predictions"][0]
    )
