"""The servable model: every training run logs and registers it under a name that says model,
data and input shape, `mlflow models serve` answers a REST request with the codes the encode
pipeline computes for the same groups, and pixels outside [0, 1] or not finite are refused."""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from kedro.io.core import DatasetError, Version
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from PIL import Image

from tests.conftest import DEFAULT_TINY, cli_params, kedro_cli, server_process
from tests.ui.browser import free_port
from ugvae_pipeline.datasets import CachedImagesDataset, MlflowGroupCodesModelDataset
from ugvae_pipeline.models.registry import build_model
from ugvae_pipeline.serving import GroupCodesModel, pixel_columns

SIZES = {"threes": 5, "mixed": 3}  # groups of different sizes
RANGE_ERROR = r"pixel values must be finite numbers in \[0, 1\] \(8-bit values divided by 255\)"


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
    # registered under model, data and input shape
    (version,) = client.search_model_versions("name='ugvae-variant-mnist_embedded-1x28x28'")
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
            (project_copy / "data" / "07_model_output" / "encoded_global_codes.parquet").glob(
                "*/encoded_global_codes.parquet"
            )
        )[-1]
    )

    port = free_port()
    bin_dir = str(Path(sys.executable).parent)  # the scoring server's uvicorn
    env = {"MLFLOW_TRACKING_URI": store, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m"]
    command += ["models:/ugvae-variant-mnist_embedded-1x28x28/1"]
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
        scaled = {"columns": columns, "data": [[r[0]] + [v * 255 for v in r[1:]] for r in rows]}
        with pytest.raises(urllib.error.HTTPError) as refused:  # 0-255 pixels, not divided
            _post(f"{base}/invocations", {"dataframe_split": scaled})
    assert refused.value.code == 400
    error = json.loads(refused.value.read())
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"
    assert re.search(RANGE_ERROR + r".*divide them by 255", error["message"])

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


@pytest.fixture
def pyfunc_model(tmp_path):
    """A tiny UG-VAE (1x28x28) saved as the pyfunc model a run logs, loaded back by MLflow."""
    torch_model = build_model({"dim_z": 3, "dim_beta": 2, "n_components": 2})
    wrapper = GroupCodesModel(torch_model)
    path = tmp_path / "pyfunc"
    mlflow.pyfunc.save_model(
        path, python_model=wrapper, signature=wrapper.signature(), pip_requirements=[]
    )
    return mlflow.pyfunc.load_model(str(path)), pixel_columns(torch_model)


def _frame(columns: list[str], pixels: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(pixels, columns=columns)
    frame.insert(0, "group", ["a"] * 3 + ["b"] * (len(frame) - 3))
    return frame


@pytest.mark.parametrize(
    "edit, problem",
    [
        (
            lambda x: x * 255,
            r"outside \[0, 1\] \(min 0, max 255\); they look like 8-bit values "
            r"0–255: divide them by 255",
        ),
        (lambda x: x - 0.5, r"outside \[0, 1\] \(min -0.5, max 0.5\)$"),
        (lambda x: np.where(np.arange(x.size).reshape(x.shape) == 7, np.nan, x), r"1 not finite"),
        (lambda x: np.where(np.arange(x.size).reshape(x.shape) == 7, np.inf, x), r"1 not finite"),
    ],
    ids=["times-255", "negative", "nan", "inf"],
)
def test_the_served_model_refuses_pixels_outside_0_1_or_not_finite(pyfunc_model, edit, problem):
    model, columns = pyfunc_model
    pixels = np.random.default_rng(0).integers(0, 256, (5, len(columns))) / 255.0
    pixels[0, :2] = (0.0, 1.0)  # the range's ends are valid
    valid = model.predict(_frame(columns, pixels))
    assert valid["n_images"].tolist() == [3, 2]
    with pytest.raises(MlflowException, match=RANGE_ERROR + ".*" + problem) as err:
        model.predict(_frame(columns, edit(pixels)))
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"  # HTTP 400 when served


@pytest.fixture
def tracking_store(tmp_path, monkeypatch, request):
    """A fresh MLflow store for this test, through the environment and MLflow's own setting
    (an earlier in-process Kedro run may have set it; both restored after)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    # the active experiment too: an earlier run's id does not exist in this store
    from mlflow.tracking import fluent

    active = fluent._active_experiment_id
    # set_experiment exports MLFLOW_EXPERIMENT_ID: monkeypatch records it as it is (set or not)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", os.environ.get("MLFLOW_EXPERIMENT_ID", ""))
    mlflow.set_experiment("registered_names")

    def restore() -> None:
        mlflow.set_tracking_uri(previous)
        fluent._active_experiment_id = active

    request.addfinalizer(restore)
    # MLflow's telemetry thread sets or unsets this when it likes: keep it as it was
    session = os.environ.get("_MLFLOW_TELEMETRY_SESSION_ID")
    monkeypatch.setenv("_MLFLOW_TELEMETRY_SESSION_ID", session or "")
    if session is None:
        monkeypatch.delenv("_MLFLOW_TELEMETRY_SESSION_ID")
    return MlflowClient()


def test_models_of_different_input_shapes_register_under_different_names(tracking_store):
    trainings = [  # (data.source, model parameters): two trainings, two input shapes
        ("mnist_embedded", {"dim_z": 3, "dim_beta": 2, "n_components": 2}),
        ("image_folder", {"architecture": "conv64", "channels": 3, "image_size": 64}),
        ("mnist_embedded", {"dim_z": 4, "dim_beta": 2, "n_components": 2}),
    ]
    dataset = MlflowGroupCodesModelDataset(pip_requirements=[])
    for source, params in trainings:
        with mlflow.start_run():
            mlflow.log_params({"data.source": source, "model.name": "ugvae"})
            dataset.save(build_model(params))
    names = sorted(m.name for m in tracking_store.search_registered_models())
    assert names == ["ugvae-paper-image_folder-3x64x64", "ugvae-paper-mnist_embedded-1x28x28"]
    for name in names:  # every version under one name takes the same input columns
        inputs = {
            str(mlflow.models.get_model_info(f"models:/{name}/{v.version}").signature.inputs)
            for v in tracking_store.search_model_versions(f"name='{name}'")
        }
        assert len(inputs) == 1
    assert (
        len(tracking_store.search_model_versions("name='ugvae-paper-mnist_embedded-1x28x28'")) == 2
    )

    mixed = MlflowGroupCodesModelDataset(
        registered_name="{name}-{source}-{shape}", pip_requirements=[]
    )
    with mlflow.start_run():
        mlflow.log_params(
            {"data.source": "mixed", "data.mixed.sources": "['mnist_embedded', 'uci_digits']"}
        )
        mixed.save(build_model({"name": "gmvae"}))
    assert tracking_store.get_registered_model("gmvae-mnist_embedded+uci_digits-1x28x28")

    trained = build_model({"name": "beta_vae"})  # as `kedro run --pipelines=training` gives it:
    trained.provenance = {"lineage": {"image_cache": "0123", "data": "uci_digits", "images": 9}}
    with mlflow.start_run():  # no data parameters logged in this run
        dataset.save(trained)
    assert tracking_store.get_registered_model("beta_vae-uci_digits-1x28x28")


@pytest.mark.parametrize(
    "template, problem",
    [
        ("{model}-{source}", r"no \{shape\}"),
        ("{model}-{sauce}-{shape}", r"unknown field \{sauce\}"),
        ("{model}/{shape}", r"a '/'"),
    ],
)
def test_a_bad_registered_name_is_refused_when_the_catalog_is_built(template, problem):
    with pytest.raises(
        DatasetError,
        match=r"mlflow_model: registered_name .*" + problem + r".*\{shape\}: the input",
    ):
        MlflowGroupCodesModelDataset(registered_name=template)
