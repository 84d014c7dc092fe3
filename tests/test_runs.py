"""How runs are described: their training groups, report titles and UG-VAE variants."""

from ugvae_pipeline.runs import (
    describe_training_groups,
    model_variant,
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
    assert model_variant("gmvae", {"mixture_prior": "global"}) == "-"
