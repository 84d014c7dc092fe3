"""Model configuration validation and the safe model file format."""

import io
import pickle
import shutil
import time

import pytest
import torch
from kedro.io import DataCatalog
from kedro.io.core import DatasetError

from ugvae_pipeline.models import UGVAE, UGVAEConfig, load_model, save_model
from ugvae_pipeline.models.io import CorruptModelFile


@pytest.mark.parametrize(
    "params, message",
    [
        ({"architecture": "resnet"}, "unknown; choose one of ['conv28', 'conv64', 'mlp28']"),
        ({"architecture": "conv64", "image_size": 28}, "does not fit architecture 'conv64'"),
        ({"architecture": "mlp28", "image_size": 64}, "takes 28x28 images"),
        ({"n_components": 0}, "model.n_components must be an integer >= 1"),
        ({"var_x": 0.0}, "model.var_x must be > 0"),
        ({"var_x": -1.0}, "model.var_x must be > 0"),
        ({"dim_beta": 2.5}, "model.dim_beta must be an integer >= 1"),
        ({"global_prior_factor": "yes"}, "must be true or false"),
        ({"dim_bta": 3}, "unknown model parameter(s) ['dim_bta']"),
    ],
)
def test_bad_model_parameters_are_named(params, message):
    with pytest.raises(ValueError) as err:
        UGVAEConfig.from_dict(params)
    assert message in str(err.value)


def test_model_round_trip_is_exact_and_in_eval_mode(tmp_path):
    torch.manual_seed(0)
    cfg = UGVAEConfig(
        architecture="conv64", channels=3, image_size=64, dim_z=4, dim_beta=5, n_components=3
    )
    model = UGVAE(cfg)
    model.train()
    path = tmp_path / "m.pt"
    save_model(model, path)
    loaded = load_model(path)
    assert not loaded.training
    assert loaded.config == cfg
    x = torch.rand(2, 4, 3, 64, 64)
    model.eval()
    assert torch.equal(model.encode(x).global_mean, loaded.encode(x).global_mean)


class Payload:
    def __reduce__(self):  # would run code if unpickled
        return (print, ("pwned",))


def test_file_needing_unpickling_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model_type": "ugvae", "config": {}, "state_dict": Payload()}, path)
    with pytest.raises(ValueError, match="weights_only=True"):
        load_model(path)
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ValueError, match="refusing to load"):
        load_model(raw)


def test_weights_of_another_architecture_are_refused():
    small = UGVAE(UGVAEConfig(dim_z=4))
    buffer = io.BytesIO()
    save_model(small, buffer)
    payload = torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    payload["config"]["dim_z"] = 6  # config now disagrees with the weights
    edited = io.BytesIO()
    torch.save(payload, edited)
    with pytest.raises(ValueError, match="weights do not match its config"):
        load_model(edited.getvalue())


def _payload(model) -> dict:
    buffer = io.BytesIO()
    save_model(model, buffer)
    return torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)


def test_truncated_or_empty_model_file_is_refused(tmp_path):
    path = tmp_path / "m.pt"
    save_model(UGVAE(UGVAEConfig(dim_z=4)), path)
    whole = path.read_bytes()
    for size in (len(whole) // 2, 100, 0):
        path.write_bytes(whole[:size])
        with pytest.raises(CorruptModelFile, match=r"model file .*m.pt is truncated or corrupt"):
            load_model(path)


def test_a_truncated_model_version_through_the_catalog_names_its_folder_and_the_fix(tmp_path):
    def catalog() -> DataCatalog:
        entry = {"type": "ugvae_pipeline.datasets.TorchModelDataset", "versioned": True}
        return DataCatalog.from_config(
            {"trained_model": {**entry, "filepath": str(tmp_path / "model.pt")}}
        )

    first, second = UGVAE(UGVAEConfig(dim_z=4)), UGVAE(UGVAEConfig(dim_z=5))
    catalog().save("trained_model", first)
    time.sleep(0.01)  # the next version's timestamp differs
    catalog().save("trained_model", second)
    older, latest = sorted((tmp_path / "model.pt").glob("*/model.pt"))
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])  # cut short

    with pytest.raises(DatasetError) as err:
        catalog().load("trained_model")
    message = str(err.value)
    assert f"{latest} is truncated or corrupt" in message
    assert f"the version folder {latest.parent} holds no loadable model" in message
    assert "<stream>" not in message and "weights_only" not in message
    shutil.rmtree(latest.parent)  # as the message says
    assert catalog().load("trained_model").config == first.config


def test_file_written_by_another_architecture_is_refused():
    conv = UGVAE(
        UGVAEConfig(
            architecture="conv64", channels=3, image_size=64, dim_z=4, dim_beta=3, n_components=3
        )
    )
    payload = _payload(conv)
    payload["config"] = UGVAEConfig(dim_z=4, dim_beta=3, n_components=3).to_dict()  # claims mlp28
    edited = io.BytesIO()
    torch.save(payload, edited)
    message = r"weights do not match its config .*architecture='mlp28'.*another architecture"
    with pytest.raises(ValueError, match=message):
        load_model(edited.getvalue())


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda p: p.update(model_type="vqvae"),
            r"model_type 'vqvae'; known: "
            r"\['beta_vae', 'gmvae', 'mlvae', 'neural_statistician', 'ugvae'\]",
        ),
        (
            lambda p: p.update(model_type="beta_vae"),
            r"unknown model parameter\(s\) \['contrastive_weight', 'dim_beta', ",
        ),
        (lambda p: p.update(format_version=2), r"format_version 2; this version reads 1"),
        (lambda p: p.pop("state_dict"), r"lacks model_type/config/state_dict"),
        (lambda p: p["config"].update(dim_z=0), r"model.dim_z must be an integer >= 1"),
    ],
    ids=["unknown-type", "other-type", "future-format", "no-weights", "invalid-config"],
)
def test_edited_model_files_are_refused_naming_the_problem(edit, message):
    payload = _payload(UGVAE(UGVAEConfig(dim_z=4)))
    edit(payload)
    edited = io.BytesIO()
    torch.save(payload, edited)
    with pytest.raises(ValueError, match=message):
        load_model(edited.getvalue())


def test_a_bare_tensor_is_not_a_model_file():
    buffer = io.BytesIO()
    torch.save(torch.zeros(3), buffer)
    with pytest.raises(ValueError, match="lacks model_type/config/state_dict"):
        load_model(buffer.getvalue())


def test_pickles_naming_the_former_home_of_ugvae_config_still_load():
    # UG-VAE models pickled by the MLflow pytorch flavour name models.config.UGVAEConfig
    config = UGVAEConfig(dim_z=4)
    old = pickle.dumps(config, protocol=0).replace(
        b"ugvae_pipeline.models.ugvae", b"ugvae_pipeline.models.config"
    )
    assert b"ugvae_pipeline.models.config" in old
    assert pickle.loads(old) == config
