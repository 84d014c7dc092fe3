"""The whole chain (`kedro run`, __default__): train, extract the codes, score and draw them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from mlflow import MlflowClient

from tests.conftest import project_catalog
from ugvae_pipeline.data.grouping.series import series_digits
from ugvae_pipeline.evaluation.code_tables import code_matrix


def _latest(folder):
    """The latest version of a versioned dataset: ``folder/<version>/<folder's name>``."""
    (path,) = sorted(folder.glob(f"*/{folder.name}"))[-1:]
    return path


def test_default_pipeline_extracts_and_scores_global_codes(default_run):
    data = default_run / "data"

    groups = pd.read_parquet(_latest(data / "07_model_output" / "global_codes.parquet"))
    assert len(groups) == 45  # 4 series x 10 + 5 random
    assert groups["group_type"].value_counts().to_dict() == {
        "even": 10,
        "odd": 10,
        "fibonacci": 10,
        "primes": 10,
        "random": 5,
    }
    assert {f"global_mean_{i:02d}" for i in range(20)} <= set(groups.columns)
    assert (groups.filter(like="global_var_") > 0).all().all()
    images = pd.read_parquet(_latest(data / "07_model_output" / "local_codes.parquet"))
    assert len(images) == 45 * 64
    probs = images.filter(like="mixture_prob_").to_numpy()
    assert abs(probs.sum(1) - 1).max() < 1e-4
    # a series group's members, in order, are the digits of a window of its series' digit
    # string (its offset onward, wrapping): their labels are that window, digit by digit
    series = groups[groups["group_type"] != "random"].set_index("group_id")
    for group_id, members in images[images["group_id"].isin(series.index)].groupby("group_id"):
        group = series.loc[group_id]
        string = series_digits(group["group_type"])
        members = members.sort_values("position")
        window = string[(int(group["offset"]) + members["position"].to_numpy()) % len(string)]
        assert members["label"].tolist() == window.tolist(), group_id
        assert set(members["label"]) <= set(string.tolist())  # only digits of its series

    scores = pd.read_csv(_latest(data / "08_reporting" / "evaluation_scores.csv"))
    assert list(scores["representation"]) == [
        "global_code",
        "mean_local_code",
        "mean_mixture_probs",
        "mean_image",
        "oracle_label_histogram",
    ]
    oracle = scores.set_index("representation").loc["oracle_label_histogram"]
    # the oracle sees each group's label histogram, and the four series' histograms are
    # linearly separable (a linear SVM separates all 4 x 256 windows of 64 digits): only the
    # cross-validation's small folds (8 groups a type to fit) can cost it a group or four of
    # the 40 (0.9 to 1.0 over draws of the groups; chance is 0.25)
    assert oracle["svm_linear"] >= 0.9
    for column in ("kmeans_ari", "kmeans_nmi", "svm_linear", "svm_rbf", "svm_linear_with_random"):
        assert scores[column].between(-1, 1).all()
    summary = json.loads(_latest(data / "08_reporting" / "evaluation_summary.json").read_text())
    assert summary["n_groups"] == 45 and summary["group_size"] == 64
    assert summary["scores"]["global_code"]["svm_linear"] == scores.loc[0, "svm_linear"]
    # μ_β's between-group spread over its posterior std, on the structured (series) groups
    series = groups[groups["group_type"] != "random"]
    mu = series.filter(regex=r"^global_mean_").to_numpy(np.float64)
    var = series.filter(regex=r"^global_var_").to_numpy(np.float64)
    spread = np.sqrt(((mu - mu.mean(0)) ** 2).mean() / var.mean())
    assert summary["global_code_spread"] == pytest.approx(spread, rel=1e-9)
    # how much β moves the decoded images beside z, for UG-VAE every score finite
    beta_effect = json.loads(_latest(data / "08_reporting" / "beta_effect.json").read_text())
    assert beta_effect["model"] == "ugvae" and beta_effect["n_groups"] == 45
    effect = beta_effect["scores"]
    assert all(value is not None and value >= 0 for value in effect.values()), effect
    assert effect["z_change"] > 0
    assert effect["beta_effect"] == pytest.approx(effect["beta_change"] / effect["z_change"])
    curve = pd.read_csv(_latest(data / "08_reporting" / "gmm_loglik_curve.csv"))
    assert list(curve["components"]) == list(range(2, 10))

    figures = {p.parent.parent.name for p in (data / "08_reporting" / "figures").glob("*/*/*.png")}
    assert {
        "global_tsne.png",
        "global_pca.png",
        "local_tsne.png",
        "gmm_loglik_curve.png",
        "global_interpolation.png",
        "component_sweep.png",
    } <= figures

    # one HTML page: the score table and every evaluation figure inline
    report = _latest(data / "08_reporting" / "evaluation_report.html").read_text()
    assert "Evaluation report: ugvae, trained on random groups, formed without labels" in report
    assert (
        "45 evaluation groups of 64 images" in report
        and "posterior mean of its group latent" in report
    )
    assert "<td>oracle_label_histogram</td>" in report and "train_loss" in report
    assert (
        "Effect of the global code on the decoded images" in report
        and "<td>beta_effect</td>" in report
    )
    assert report.count("data:image/png;base64,") == 6

    client = MlflowClient(f"sqlite:///{default_run / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ugvae_pipeline")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.metrics["eval_global_code_svm_linear"] == scores.loc[0, "svm_linear"]
    assert "eval_mean_image_kmeans_ari" in run.data.metrics
    assert run.data.metrics["eval_beta_effect"] == pytest.approx(effect["beta_effect"])
    assert run.data.metrics["eval_z_change"] == pytest.approx(effect["z_change"])
    evaluation = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert {"evaluation/evaluation_scores.csv", "evaluation/beta_effect.json"} <= evaluation
    reports = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert reports == {"report/training_report.html", "report/evaluation_report.html"}


def test_extracted_codes_are_the_models_encoding_of_test_images(default_run):
    """The versioned model, images and evaluation groups, loaded through the Data Catalog: every
    group indexes test images only, and its extracted codes are ``model.encode`` of them."""
    data = default_run / "data"
    with project_catalog(default_run) as catalog:
        model = catalog.load("trained_model")
        images = catalog.load("images")
        metadata = catalog.load("image_metadata")
        groups = catalog.load("evaluation_groups")
        group_metadata = catalog.load("evaluation_group_metadata")
    assert groups.shape == (45, 64)
    assert (metadata["split"].to_numpy()[groups.reshape(-1)] == "test").all()
    global_codes = pd.read_parquet(_latest(data / "07_model_output" / "global_codes.parquet"))
    local_codes = pd.read_parquet(_latest(data / "07_model_output" / "local_codes.parquet"))
    assert global_codes["group_id"].tolist() == group_metadata["group_id"].tolist()
    local_codes = local_codes.sort_values(["group_id", "position"])
    assert (
        local_codes["image_id"].to_numpy() == metadata["image_id"].to_numpy()[groups].reshape(-1)
    ).all()
    x = torch.from_numpy(np.asarray(images)[groups.reshape(-1)]).float().div(255.0)
    x = x.view(*groups.shape, *images.shape[1:])
    with torch.no_grad():  # one group at a time: no other group can enter its code
        encodings = [model.eval().encode(x[i : i + 1]) for i in range(len(groups))]
    expected = {
        "global_mean": torch.cat([e.global_mean for e in encodings]),
        "global_var": torch.cat([e.global_var for e in encodings]),
        "local_mean": torch.cat([e.local_mean for e in encodings]).flatten(0, 1),
    }
    # the same float32 network on one group or a chunk of them: only the order of the sums in
    # its matrix products differs (~1e-6 relative); another group's images differ by O(1)
    for prefix, table in (
        ("global_mean", global_codes),
        ("global_var", global_codes),
        ("local_mean", local_codes),
    ):
        torch.testing.assert_close(
            torch.from_numpy(code_matrix(table, prefix)).float(),
            expected[prefix],
            rtol=1e-4,
            atol=1e-5,
            msg=prefix,
        )


def test_beta_effect_node_leaves_out_what_a_model_has_no_latent_for():
    """β-VAE: no group latent, no mixture: null in the JSON, no MLflow metric (compare: missing)."""
    import torch

    from ugvae_pipeline.evaluation.code_tables import global_code_table, local_code_table
    from ugvae_pipeline.evaluation.encoding import encode_groups
    from ugvae_pipeline.models import build_model
    from ugvae_pipeline.pipelines.evaluate.nodes import beta_effect_table, score_beta_effect

    torch.manual_seed(0)
    model = build_model({"name": "beta_vae"})
    images = np.random.default_rng(0).integers(0, 256, size=(24, 1, 28, 28), dtype=np.uint8)
    groups = np.arange(24).reshape(6, 4)
    meta = pd.DataFrame({"group_id": np.arange(6), "group_type": ["a", "b"] * 3})
    image_meta = pd.DataFrame({"image_id": np.arange(24), "label": np.arange(24) % 10})
    codes = encode_groups(model, images, groups, progress="off")
    summary, metrics = score_beta_effect(
        model,
        global_code_table(codes, meta),
        local_code_table(codes, groups, image_meta, meta),
        {"seed": 0, "beta_effect": {"groups_per_chunk": 4}},
    )
    assert summary["model"] == "beta_vae" and summary["scores"]["z_change"] > 0
    assert (
        summary["scores"]["beta_effect"] is None and summary["scores"]["component_spread"] is None
    )
    assert set(metrics) == {"eval_z_change"}
    assert metrics["eval_z_change"] == [{"value": summary["scores"]["z_change"], "step": 0}]
    json.dumps(summary, allow_nan=False)  # strict JSON
    table = beta_effect_table(summary)
    assert table["value"].notna().sum() == 1


def test_extract_refuses_a_saved_model_other_than_model_name():
    from ugvae_pipeline.models import build_model
    from ugvae_pipeline.pipelines.extract.nodes import extract_codes

    model = build_model({"name": "gmvae", "architecture": "mlp28"})
    images = np.zeros((4, 1, 28, 28), dtype=np.uint8)
    with pytest.raises(
        ValueError,
        match=r"the latest trained_model is a gmvae but model.name=ugvae: pass --params model.name=gmvae",
    ):
        extract_codes(
            model,
            images,
            pd.DataFrame(),
            np.zeros((1, 4), dtype=np.int64),
            pd.DataFrame(),
            {"groups_per_chunk": 1},
            {"name": "ugvae"},
        )
