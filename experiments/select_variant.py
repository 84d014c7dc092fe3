"""Choose the project's UG-VAE variant on validation groups only.

    python experiments/select_variant.py            # about 10 min on a 2-core CPU

Each candidate below (fixed before any run) trains once (seed 1) on random groups of the
training images, then is scored on **validation** groups: the official digit series built from
validation images with their own seeds (series 3024, random 3025), never the test groups that
`kedro run` reports. The criterion, fixed in advance: the mean of the global code's linear-SVM
accuracy and k-means ARI on those groups. The best variant becomes `conf/base`'s default;
the paper's model (`--env official`) is scored beside it for reference, not chosen among.
Runs are logged to the MLflow experiment ``ugvae_selection``; the table is printed as Markdown.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from studies import kedro_run, n_train_images, paper_params, run_config, study_runs  # noqa: E402

EXPERIMENT = "ugvae_selection"
VALIDATION = {
    "groups.evaluation.split": "validation",
    "groups.series.seed": 3024,
    "groups.evaluation.random.seed": 3025,
    "train.seed": 1,
    "mlflow_experiment": EXPERIMENT,
    "train.progress": "log",
    "extract.progress": "log",
}
VARIANT = {  # the previous default: π-only factors, shared variance, p(d | β), K = 30, conv28
    "model.architecture": "conv28",
    "model.dim_beta": 32,
    "model.n_components": 30,
    "model.global_factor_input": "probs",
    "model.global_factor_variance": "shared",
    "model.mixture_prior": "global",
    "train.epochs": 60,
}
CANDIDATES = {
    "pi_shared_global_conv28": VARIANT,
    "pi_shared_global_mlp28": {**VARIANT, "model.architecture": "mlp28"},
    "official_factors_global_conv28": {
        **VARIANT,
        "model.global_factor_input": "features_and_probs",
        "model.global_factor_variance": "per_observation",
    },
    "pi_shared_uniform_conv28": {**VARIANT, "model.mixture_prior": "uniform"},
}
SCORES = ("eval_global_code_svm_linear", "eval_global_code_kmeans_ari")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", default=",".join(["paper", *CANDIDATES]))
    args = parser.parse_args(argv)
    project = Path.cwd()
    for name in args.candidates.split(","):
        if name == "paper":
            params = paper_params(project, n_train_images(project, "base"))
        else:
            params = CANDIDATES[name]
        kedro_run(
            project, "base", {**params, **VALIDATION, "model.name": "ugvae"}, f"selection / {name}"
        )
    table = study_runs(run_config(project, "base")[0], EXPERIMENT)
    table["criterion"] = table[list(SCORES)].mean(axis=1)
    columns = [
        "variant",
        "heldout_loss",
        *SCORES,
        "eval_mean_mixture_probs_svm_linear",
        "eval_mean_mixture_probs_kmeans_ari",
        "criterion",
    ]
    print(
        table[[c for c in columns if c in table]]
        .sort_values("criterion")
        .to_string(index=False, float_format="%.3f")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
