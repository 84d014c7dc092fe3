"""Why does μ_β fall short? Component purity and the mean-π ceiling of one trained variant.

    python -m ugvae_pipeline.experiments.series_diagnostics \
        '{"global_factor_input": "probs", "mixture_prior": "global", "n_components": 30}' '{"epochs": 60}'

Trains like ``series_variants`` (random groups) and prints, on the protocol's series groups:
the purity of the components (argmax π vs true digit), and linear-SVM accuracy / k-means ARI
of μ_β, of the group's mean π (soft component histogram), of its hard component histogram
and of the mean local code. A β computed from π cannot beat what the histograms hold.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch

from ugvae_pipeline.data.grouping import random_group_plan, random_groups, split_indices
from ugvae_pipeline.data.sources import load_embedded_mnist
from ugvae_pipeline.evaluation.encoding import encode_groups
from ugvae_pipeline.evaluation.metrics import clustering_scores, svm_accuracy
from ugvae_pipeline.evaluation.protocol import METRIC_SEED, protocol_groups
from ugvae_pipeline.experiments.series_variants import OFFICIAL_MODEL, OFFICIAL_TRAIN
from ugvae_pipeline.models.config import UGVAEConfig
from ugvae_pipeline.models.ugvae import UGVAE
from ugvae_pipeline.training.config import TrainConfig
from ugvae_pipeline.training.seed import seed_everything
from ugvae_pipeline.training.trainer import train


def component_purity(mixture_probs: np.ndarray, labels: np.ndarray) -> float:
    """Share of images whose component's majority digit is their digit. ``[n, B, K]``, ``[n, B]``."""
    comp, lab = mixture_probs.argmax(-1).ravel(), np.asarray(labels).ravel()
    return float(sum(np.bincount(lab[comp == k]).max() for k in np.unique(comp)) / len(lab))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    model_over = json.loads(argv[0]) if argv else {}
    train_over = json.loads(argv[1]) if len(argv) > 1 else {}
    torch.set_num_threads(1)
    images, meta = load_embedded_mnist(0.2, 0)
    labels = meta["label"].to_numpy()
    train_idx, heldout_idx = split_indices(meta, "train"), split_indices(meta, "heldout")
    model_cfg = UGVAEConfig.from_dict({**OFFICIAL_MODEL, **model_over})
    train_cfg = TrainConfig.from_dict({**OFFICIAL_TRAIN, **train_over})
    seed_everything(train_cfg.seed)
    plan = random_group_plan(train_idx, 128, train_cfg.epochs, train_cfg.seed)
    start = time.perf_counter()
    model, history = train(UGVAE(model_cfg), images, plan, random_groups(heldout_idx, 8, 128, seed=7), train_cfg)
    print("train minutes", round((time.perf_counter() - start) / 60, 2),
          "held-out ELBO/image", round(-float(history.iloc[-1]["heldout_loss"]), 2))
    groups, table, _ = protocol_groups(labels, heldout_idx)
    types = table["group_type"].to_numpy(str)
    codes = encode_groups(model, images, groups)
    pi = codes.mixture_probs
    print("component purity", round(component_purity(pi, labels[groups]), 3))
    hard = np.eye(pi.shape[-1])[pi.argmax(-1)].mean(1)
    for name, x in [("global_code", codes.global_code), ("mean_pi", pi.mean(1)),
                    ("hard_histogram", hard), ("mean_local_code", codes.local_code.mean(1))]:
        print(f"{name:16s} lin-SVM {svm_accuracy(x, types, seed=METRIC_SEED):.3f} "
              f"k-means ARI {clustering_scores(x, types, seed=METRIC_SEED)['ari']:.3f}")


if __name__ == "__main__":
    main()
