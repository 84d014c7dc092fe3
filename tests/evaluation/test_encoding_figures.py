import subprocess
import sys

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from ugvae_pipeline.evaluation import figures
from ugvae_pipeline.evaluation.encoding import encode_groups
from ugvae_pipeline.evaluation.metrics import gmm_loglik_curve
from ugvae_pipeline.models.ugvae import UGVAE, UGVAEConfig


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return UGVAE(UGVAEConfig(mixture_prior="global")).eval()


def test_chunked_encoding_equals_one_pass(model):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 1, 28, 28), dtype=np.uint8)
    groups = rng.integers(0, 40, size=(7, 5))
    codes = encode_groups(model, images, groups, chunk=3)
    assert codes.global_code.shape == (7, 20) and codes.local_code.shape == (7, 5, 10)
    assert codes.mixture_probs.shape == (7, 5, 10) and (codes.global_var > 0).all()
    x = torch.from_numpy(images[groups]).float() / 255
    direct = model.encode(x)
    np.testing.assert_allclose(codes.global_code, direct.global_mean.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(codes.local_code, direct.local_mean.numpy(), rtol=1e-4, atol=1e-5)
    assert not model.training


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_code_map_draws_one_series_per_group_type(method):
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(30, 6))
    types = np.repeat(["even", "odd", "random"], 10)
    fig = figures.code_map(codes, types, method=method)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.collections) == 3
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["even", "odd", "random"]


def test_a_collapsed_code_gets_an_empty_map_not_a_crash():
    """Identical codes (a model whose μ_β collapsed) made scikit-learn's t-SNE divide by a zero
    spread and crash the process (SIGSEGV): drawn in a child process, so a crash fails here."""
    script = (
        "import numpy as np\n"
        "from ugvae_pipeline.evaluation import figures\n"
        "for method in ('tsne', 'pca'):\n"
        "    fig = figures.code_map(np.ones((250, 20)), np.repeat(['a', 'b'], 125), method)\n"
        "    print(fig.axes[0].get_title().splitlines()[-1])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["(every code is the same: no map)"] * 2


def test_interpolation_grid_corners_are_the_endpoint_decodes(model):
    za, zb = torch.randn(10), torch.randn(10)
    ba, bb = torch.randn(20), torch.randn(20)
    fig = figures.interpolation_grid(model, ba.numpy(), bb.numpy(), za.numpy(), zb.numpy(), steps=5)
    tiles = fig.axes[0].get_images()[0].get_array()
    assert tiles.shape == (5 * 28, 5 * 28)
    with torch.no_grad():
        top_right = model.decode(za.view(1, 1, -1), bb.view(1, -1))[0, 0, 0].numpy()
    np.testing.assert_allclose(tiles[:28, -28:], top_right, atol=1e-5)


def test_component_sweep_columns_follow_beta(model):
    fig = figures.component_sweep(model, component=3, steps=4)
    tiles = fig.axes[0].get_images()[0].get_array()
    assert tiles.shape == (4 * 28, 4 * 28)
    with torch.no_grad():
        beta = torch.full((1, 20), -1.5)
        mean, var = model.component_prior(beta)
        u = torch.randn(10, generator=torch.Generator().manual_seed(0))
        z = mean[0, 3] - 1.0 * var[0, 3].sqrt() * u
        expected = model.decode(z.view(1, 1, -1), beta)[0, 0, 0].numpy()
    np.testing.assert_allclose(tiles[:28, :28], expected, atol=1e-5)
    with pytest.raises(ValueError):
        figures.code_map(np.zeros((4, 2)), np.arange(4), method="umap")


def test_gmm_curve_figure():
    rng = np.random.default_rng(0)
    curve = gmm_loglik_curve(rng.normal(size=(30, 3)), rng.normal(size=(30, 3)), components=[2, 3])
    fig = figures.gmm_curve_figure(curve)
    assert [len(line.get_xdata()) for line in fig.axes[0].get_lines()] == [2, 2]


@pytest.mark.parametrize("name", ["beta_vae", "gmvae", "mlvae", "neural_statistician"])
def test_baselines_get_the_same_figures_on_the_latents_they_have(name):
    from ugvae_pipeline import plotting
    from ugvae_pipeline.models import build_model

    torch.manual_seed(0)
    baseline = build_model(
        {"name": name, "architecture": "mlp28", "dim_z": 4, "dim_beta": 6, "n_components": 3}
    ).eval()
    za, zb = torch.randn(4), torch.randn(4)
    group_latent = name in ("mlvae", "neural_statistician")
    group = (torch.randn(6).numpy(), torch.randn(6).numpy()) if group_latent else (None, None)
    tiles = (
        figures.interpolation_grid(baseline, *group, za.numpy(), zb.numpy(), steps=5)
        .axes[0]
        .get_images()[0]
        .get_array()
    )
    with torch.no_grad():
        last = baseline.decode(
            zb.view(1, 1, -1), None if group[1] is None else torch.as_tensor(group[1]).view(1, -1)
        )
    # with a group code: 5 x 5 (columns the group code); without: one row, z along the columns
    assert tiles.shape == ((5 if group_latent else 1) * 28, 5 * 28)
    np.testing.assert_allclose(tiles[-28:, -28:], last[0, 0, 0].numpy(), atol=1e-5)

    sweep = figures.component_sweep(baseline, component=2, steps=3)
    assert sweep.axes[0].get_images()[0].get_array().shape == (3 * 28, 3 * 28)
    title = sweep.axes[0].get_title()
    assert ("component 2" in title) == (name == "gmvae") and ("columns β" in title) == group_latent
    samples = plotting.component_samples_figure(baseline, n_per_component=4)
    rows = 3 if name == "gmvae" else 8  # one row per component, else rows of prior samples
    assert samples.axes[0].get_images()[0].get_array().shape[0] == rows * 29 + 1
