"""Domain alignment on MNIST + UCI digits (paper §4.2 on offline data).

    python -m ugvae_pipeline.experiments.domain_alignment --variants official shared_k30

Training groups mix the two databases (each image from MNIST with p = 0.5, training splits
only). Evaluation on held-out images: 50 single-database groups of 128 per database →
domain accuracy from μ_β (linear SVM, 5-fold stratified CV); local codes μ_z of every
held-out image → k-NN digit accuracy fitted on one database and scored on the other
(both directions). Goal: domain accuracy ≥ 0.95 and cross-database k-NN ≥ 0.75.
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

from ugvae_pipeline.data.grouping import random_groups
from ugvae_pipeline.data.sources import load_embedded_mnist, stratified_split
from ugvae_pipeline.evaluation.alignment import cross_domain_knn_accuracy, domain_accuracy
from ugvae_pipeline.evaluation.encoding import encode_groups
from ugvae_pipeline.experiments.series_variants import OFFICIAL_MODEL, OFFICIAL_TRAIN, VARIANTS
from ugvae_pipeline.models.config import UGVAEConfig
from ugvae_pipeline.models.ugvae import UGVAE
from ugvae_pipeline.training.config import TrainConfig
from ugvae_pipeline.training.seed import seed_everything
from ugvae_pipeline.training.trainer import train

N_EVAL_GROUPS = 50
EVAL_SEED = 2026


def load_uci_digits_28(heldout_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TEMPORARY local helper, to be replaced by the UCI loader of data/sources.py.

    sklearn's 1,797 UCI 8×8 digits (0..16) scaled bilinearly to a 20×20 box centred in
    28×28, 0..255 uint8. Returns ``(images [N, 1, 28, 28], labels [N], split [N])``.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None]
    box = torch.nn.functional.interpolate(small, size=(20, 20), mode="bilinear", align_corners=False)
    images = torch.zeros(len(small), 1, 28, 28)
    images[:, :, 4:24, 4:24] = box.clamp(0, 1)
    labels = digits.target.astype(np.int64)
    return (images * 255).round().to(torch.uint8).numpy(), labels, stratified_split(labels, heldout_fraction, seed)


def mixed_group_plan(pool_a: np.ndarray, pool_b: np.ndarray, n_groups: int, group_size: int,
                     epochs: int, seed: int, p_a: float = 0.5) -> np.ndarray:
    """``[epochs, n_groups, B]``: each image from pool A with probability ``p_a``, else from B."""
    rng = np.random.default_rng(seed)
    shape = (epochs, n_groups, group_size)
    from_a = rng.random(shape) < p_a
    a = pool_a[rng.integers(0, len(pool_a), shape)]
    b = pool_b[rng.integers(0, len(pool_b), shape)]
    return np.where(from_a, a, b).astype(np.int64)


def run_variant(name: str, threads: int = 1) -> dict:
    what, model_over, train_over, _ = VARIANTS[name]
    torch.set_num_threads(threads)
    mnist, meta = load_embedded_mnist(0.2, 0)
    uci, uci_labels, uci_split = load_uci_digits_28()
    images = np.concatenate([mnist, uci])
    labels = np.concatenate([meta["label"].to_numpy(), uci_labels])
    domain = np.array(["mnist"] * len(mnist) + ["uci"] * len(uci))
    split = np.concatenate([meta["split"].to_numpy(str), uci_split.astype(str)])
    pools = {(d, s): np.flatnonzero((domain == d) & (split == s)) for d in ("mnist", "uci") for s in ("train", "heldout")}

    model_cfg = UGVAEConfig.from_dict({**OFFICIAL_MODEL, **model_over})
    train_cfg = TrainConfig.from_dict({**OFFICIAL_TRAIN, **train_over})
    seed_everything(train_cfg.seed)
    n_train = len(pools["mnist", "train"]) + len(pools["uci", "train"])
    plan = mixed_group_plan(pools["mnist", "train"], pools["uci", "train"], n_train // 128, 128, train_cfg.epochs, train_cfg.seed)
    heldout_groups = mixed_group_plan(pools["mnist", "heldout"], pools["uci", "heldout"], 8, 128, 1, 7)[0]
    start = time.perf_counter()
    model, history = train(UGVAE(model_cfg), images, plan, heldout_groups, train_cfg)
    minutes = (time.perf_counter() - start) / 60

    eval_groups = np.concatenate([
        random_groups(pools["mnist", "heldout"], N_EVAL_GROUPS, 128, EVAL_SEED),
        random_groups(pools["uci", "heldout"], N_EVAL_GROUPS, 128, EVAL_SEED + 1),
    ])
    group_domain = np.repeat(["mnist", "uci"], N_EVAL_GROUPS)
    codes = encode_groups(model, images, eval_groups)
    # local codes of every held-out image (q(z|x) does not depend on the group)
    per_image = {}
    for d in ("mnist", "uci"):
        idx = pools[d, "heldout"]
        size = 8 if len(idx) % 8 == 0 else 1
        local = encode_groups(model, images, idx.reshape(-1, size)).local_code.reshape(len(idx), -1)
        per_image[d] = (local, labels[idx])
    m_to_u = cross_domain_knn_accuracy(*per_image["mnist"], *per_image["uci"])
    u_to_m = cross_domain_knn_accuracy(*per_image["uci"], *per_image["mnist"])
    return {
        "variant": name, "what": what, "train_minutes": round(minutes, 2),
        "heldout_elbo_per_image": -float(history.iloc[-1]["heldout_loss"]),
        "domain_accuracy_beta": domain_accuracy(codes.global_code, group_domain),
        "knn_mnist_to_uci": m_to_u, "knn_uci_to_mnist": u_to_m, "knn_mean": 0.5 * (m_to_u + u_to_m),
        "model": json.dumps(model_over), "train": json.dumps(train_over),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["official"], choices=sorted(VARIANTS))
    parser.add_argument("--out", default="docs/domain_results.csv")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for name in args.variants:
        row = pd.DataFrame([run_variant(name, args.threads)])
        print(row.T.to_string(), flush=True)
        row.to_csv(out, mode="a", header=not out.exists(), index=False)


if __name__ == "__main__":
    main()
