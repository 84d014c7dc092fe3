"""How runs are described: their training groups, report titles and UG-VAE variants."""

from ugvae_pipeline.runs import (
    describe_training_groups,
    model_variant,
    run_name,
    run_title,
    training_groups_strategy,
)


def test_ml_vae_always_trains_on_label_groups_and_reports_say_so():
    assert training_groups_strategy("mlvae", "random") == "labels"
    assert training_groups_strategy("ugvae", "random") == "random"
    assert training_groups_strategy("gmvae", "labels") == "labels"
    assert (
        training_groups_strategy("vqvae", "random") == "random"
    )  # a name no model has (an old run)
    assert "ML-VAE's intended weak supervision" in describe_training_groups(
        "mlvae", "random", "label"
    )
    assert "(weak supervision)" in describe_training_groups("ugvae", "labels")
    assert "without labels" in describe_training_groups("beta_vae", "random")
    title = run_title(
        {"name": "mlvae"}, {"training": {"strategy": "random", "label_column": "digit"}}
    )
    assert title.startswith("mlvae, trained on groups formed by labels") and "'digit'" in title


def test_a_ugvae_run_is_the_paper_or_names_what_differs():
    assert model_variant("ugvae", {"mixture_prior": "uniform", "architecture": "mlp28"}) == "paper"
    assert (
        model_variant("ugvae", {"mixture_prior": "global", "architecture": "conv28"})
        == "variant(p(d|β)=global, conv28)"
    )
    assert (
        model_variant("ugvae", {"global_encoder": "attention", "architecture": "mlp28"})
        == "variant(encoder=attention)"
    )
    assert model_variant("ugvae", {"global_encoder": "product"}) == "paper"
    assert model_variant("gmvae", {"mixture_prior": "global"}) == "-"


def test_run_names_say_model_variant_data_groups_seed_and_partial_pipelines():
    paper = {"name": "ugvae", "architecture": "mlp28", "global_factor_input": "features_and_probs"}
    variant = {"name": "ugvae", "architecture": "conv28", "global_factor_input": "probs"}
    groups = {"training": {"strategy": "random"}}
    embedded = {"source": "mnist_embedded"}
    assert run_name(variant, groups, embedded, 1) == "ugvae-variant-mnist_embedded-random-s1"
    assert (
        run_name(paper, groups, embedded, 2, ["__default__"])
        == "ugvae-paper-mnist_embedded-random-s2"
    )
    mixed = {
        "source": "mixed",
        "mixed": {"sources": ["mnist_embedded", {"source": "image_folder", "domain": "faces"}]},
    }
    assert (
        run_name(
            {"name": "gmvae"}, {"training": {"strategy": "mixed_domains"}}, mixed, 3, ["train"]
        )
        == "gmvae-mnist_embedded+faces-mixed_domains-s3-train"
    )
    assert run_name({"name": "mlvae"}, groups, embedded, 1).startswith(
        "mlvae-mnist_embedded-labels-"
    )
