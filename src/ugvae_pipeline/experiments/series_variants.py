"""Train UG-VAE variants on random groups of embedded MNIST; score μ_β on the digit series.

    python -m ugvae_pipeline.experiments.series_variants --variants official probs_global \
        --out docs/series_results.csv

Each variant is a (model, train) parameter override of the official MNIST settings; the
evaluation is the fixed protocol of ``evaluation.protocol``. Results append one row per
variant to ``--out`` (CSV); ``--variants baselines`` writes the model-free baselines to
``<out>_baselines.csv``. ``structured_*`` variants train on series groups of *training*
images (a weaker claim, reported separately).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ugvae_pipeline.data.grouping import random_group_plan, random_groups, split_indices
from ugvae_pipeline.data.series import series_groups
from ugvae_pipeline.data.sources import load_embedded_mnist
from ugvae_pipeline.evaluation.protocol import baseline_scores, model_scores
from ugvae_pipeline.models.config import UGVAEConfig
from ugvae_pipeline.models.ugvae import UGVAE
from ugvae_pipeline.training.config import TrainConfig
from ugvae_pipeline.training.seed import seed_everything
from ugvae_pipeline.training.trainer import train

OFFICIAL_MODEL = dict(dim_z=10, dim_beta=20, n_components=10, var_x=0.2)
OFFICIAL_TRAIN = dict(epochs=20, learning_rate=5e-3, group_size=128, groups_per_step=1, seed=1,
                      device="cpu", precision="fp32", progress="off")

RECOMMENDED_MODEL = dict(global_factor_input="probs", global_factor_variance="shared",
                         mixture_prior="global", n_components=30, dim_beta=32)

# name -> (what changed, model overrides, train overrides, training groups)
VARIANTS: dict[str, tuple[str, dict, dict, str]] = {
    "official": ("official settings, 20 epochs", {}, {}, "random"),
    "official_seed2": ("official settings, 20 epochs, seed 2", {}, {"seed": 2}, "random"),
    "official_seed3": ("official settings, 20 epochs, seed 3", {}, {"seed": 3}, "random"),
    "official_8ep": ("official settings, 8 epochs (SPEC)", {}, {"epochs": 8}, "random"),
    "official_100ep": ("official, 100 epochs", {}, {"epochs": 100}, "random"),
    "prior_factor": ("N(0,I) factor in q(β)", {"global_prior_factor": True}, {}, "random"),
    "global_mix": ("p(d|β)=Cat(softmax(Wβ))", {"mixture_prior": "global"}, {}, "random"),
    "probs": ("q(β) factors from π_i alone", {"global_factor_input": "probs"}, {}, "random"),
    "probs_global": ("factors from π_i + p(d|β)",
                     {"global_factor_input": "probs", "mixture_prior": "global"}, {}, "random"),
    "probs_global_prior": ("factors from π_i + p(d|β) + prior factor",
                           {"global_factor_input": "probs", "mixture_prior": "global",
                            "global_prior_factor": True}, {}, "random"),
    "probs_global_100ep": ("factors from π_i + p(d|β), 100 epochs",
                           {"global_factor_input": "probs", "mixture_prior": "global"},
                           {"epochs": 100}, "random"),
    "global_mix_warmup": ("p(d|β) + global-KL warm-up 10 ep", {"mixture_prior": "global"},
                          {"global_kl_warmup_epochs": 10}, "random"),
    "probs_global_warmup": ("factors from π_i + p(d|β) + warm-up 10 ep",
                            {"global_factor_input": "probs", "mixture_prior": "global"},
                            {"global_kl_warmup_epochs": 10}, "random"),
    "structured_official": ("official, trained on series groups (train digits)", {}, {}, "series"),
    # the recommended default: factors from π_i with one shared variance (μ_β linear in the
    # group's mean π), β-dependent mixture weights, K=30, dim_beta=32, 60 epochs
    "shared_k30": ("π factors, shared var, p(d|β), K=30, dim_β=32, 60 ep", RECOMMENDED_MODEL, {"epochs": 60}, "random"),
    "shared_k30_seed2": ("shared_k30, seed 2", RECOMMENDED_MODEL, {"epochs": 60, "seed": 2}, "random"),
    "shared_k30_conv28": ("shared_k30 with a small conv encoder (conv28), 40 ep", {**RECOMMENDED_MODEL, "architecture": "conv28"},
                          {"epochs": 40}, "random"),
    "shared_k30_conv28_seed2": ("shared_k30_conv28, seed 2", {**RECOMMENDED_MODEL, "architecture": "conv28"},
                                {"epochs": 40, "seed": 2}, "random"),
    "shared_k30_conv28_seed3": ("shared_k30_conv28, seed 3", {**RECOMMENDED_MODEL, "architecture": "conv28"},
                                {"epochs": 40, "seed": 3}, "random"),
    "shared_k30_conv28_60ep": ("shared_k30_conv28, 60 epochs", {**RECOMMENDED_MODEL, "architecture": "conv28"},
                               {"epochs": 60}, "random"),
    "shared_k30_conv28_60ep_seed2": ("shared_k30_conv28, 60 epochs, seed 2", {**RECOMMENDED_MODEL, "architecture": "conv28"},
                                     {"epochs": 60, "seed": 2}, "random"),
    "shared_k30_conv28_60ep_seed3": ("shared_k30_conv28, 60 epochs, seed 3", {**RECOMMENDED_MODEL, "architecture": "conv28"},
                                     {"epochs": 60, "seed": 3}, "random"),
    "shared_k50_conv28": ("conv28, K=50, dim_β=50, 40 ep",
                          {**RECOMMENDED_MODEL, "architecture": "conv28", "n_components": 50, "dim_beta": 50},
                          {"epochs": 40}, "random"),
    "shared_k30_seed3": ("shared_k30, seed 3", RECOMMENDED_MODEL, {"epochs": 60, "seed": 3}, "random"),
    "shared_k30_uniform": ("shared_k30 with uniform Cat(1/K)", {**RECOMMENDED_MODEL, "mixture_prior": "uniform"},
                           {"epochs": 60}, "random"),
    "shared_k10": ("π factors, shared var, p(d|β), official K=10, dim_β=20, 60 ep",
                   {"global_factor_input": "probs", "mixture_prior": "global", "global_factor_variance": "shared"},
                   {"epochs": 60}, "random"),
    "shared_k30_120ep": ("shared_k30, 120 epochs", RECOMMENDED_MODEL, {"epochs": 120}, "random"),
    "shared_k50": ("π factors, shared var, p(d|β), K=50, dim_β=50, 60 ep",
                   {**RECOMMENDED_MODEL, "n_components": 50, "dim_beta": 50}, {"epochs": 60}, "random"),
    "structured_shared_k30": ("shared_k30 trained on series groups (train digits)", RECOMMENDED_MODEL,
                              {"epochs": 60}, "series"),
}


def training_plan(labels: np.ndarray, train_idx: np.ndarray, groups: str, epochs: int, seed: int) -> np.ndarray:
    """``[epochs, n_groups, 128]``: random groups, or series groups of training images."""
    if groups == "random":
        return random_group_plan(train_idx, 128, epochs, seed)
    n_groups = len(train_idx) // 128
    plan = [
        series_groups(labels, train_idx, n_groups // 4 + 1, 128, seed=seed * 1000 + e)[0]
        for e in range(epochs)
    ]
    rng = np.random.default_rng(seed)
    return np.stack([p[rng.permutation(len(p))[:n_groups]] for p in plan])


def run_variant(name: str, images: np.ndarray, meta: pd.DataFrame, threads: int = 1) -> dict:
    what, model_over, train_over, groups = VARIANTS[name]
    torch.set_num_threads(threads)
    model_cfg = UGVAEConfig.from_dict({**OFFICIAL_MODEL, **model_over})
    train_cfg = TrainConfig.from_dict({**OFFICIAL_TRAIN, **train_over})
    seed_everything(train_cfg.seed)
    labels = meta["label"].to_numpy()
    train_idx, heldout_idx = split_indices(meta, "train"), split_indices(meta, "heldout")
    plan = training_plan(labels, train_idx, groups, train_cfg.epochs, train_cfg.seed)
    heldout_groups = random_groups(heldout_idx, 8, 128, seed=7)
    model = UGVAE(model_cfg)
    start = time.perf_counter()
    model, history = train(model, images, plan, heldout_groups, train_cfg)
    minutes = (time.perf_counter() - start) / 60
    scores, curve = model_scores(model, images, labels, heldout_idx)
    g, m = scores["global_code"], scores["mean_local_code"]
    last = history.iloc[-1]
    return {
        "variant": name, "what": what, "train_groups": groups, "train_minutes": round(minutes, 2),
        "heldout_elbo_per_image": -float(last["heldout_loss"]),
        "heldout_global_kl_per_group": float(last["heldout_global_kl"]) * 128,
        "beta_svm_linear": g["svm_linear"], "beta_svm_rbf": g["svm_rbf"],
        "beta_kmeans_ari": g["kmeans_ari"], "beta_kmeans_nmi": g["kmeans_nmi"],
        "beta_silhouette": g["kmeans_silhouette"], "beta_gmm_ari": g["gmm_ari"],
        "beta_svm_linear_with_random": g["svm_linear_with_random"],
        "mean_local_svm_linear": m["svm_linear"], "mean_local_kmeans_ari": m["kmeans_ari"],
        "gmm_loglik_grouped_minus_random": float((curve["grouped"] - curve["random"]).mean()),
        "model": json.dumps(model_over), "train": json.dumps(train_over),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["official"], choices=sorted(VARIANTS) + ["baselines"])
    parser.add_argument("--out", default="docs/series_results.csv")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    images, meta = load_embedded_mnist(0.2, 0)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for name in args.variants:
        if name == "baselines":
            torch.set_num_threads(args.threads)
            scores = baseline_scores(images, meta["label"].to_numpy(), split_indices(meta, "heldout"))
            row = pd.DataFrame([{"variant": f"baseline_{k}", **v} for k, v in scores.items()])
            target = out.with_name(out.stem + "_baselines.csv")
        else:
            row = pd.DataFrame([run_variant(name, images, meta, args.threads)])
            target = out
        print(row.T.to_string(), flush=True)
        row.to_csv(target, mode="a", header=not target.exists(), index=False)


if __name__ == "__main__":
    main()
