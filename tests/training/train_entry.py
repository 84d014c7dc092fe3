"""A small training run in its own process, for the kill-and-resume test.

    python tests/training/train_entry.py OUT_FILE CHECKPOINT_DIR EPOCHS RESUME(0|1) [SEED]

Trains on 640 fixed pseudo-random 28x28 images (groups of 32) with one torch thread, writing a
checkpoint every epoch, and saves the final ``state_dict`` to OUT_FILE. (Pseudo-random pixels
start the process seconds faster than the embedded digits; exactness does not depend on them.)
"""

import sys

import numpy as np
import torch

from ugvae_pipeline.data.grouping import random_group_plan, random_groups
from ugvae_pipeline.models import UGVAE, UGVAEConfig
from ugvae_pipeline.training.config import TrainConfig
from ugvae_pipeline.training.seed import seed_everything
from ugvae_pipeline.training.trainer import train

MODEL = UGVAEConfig(dim_z=4, dim_beta=5, n_components=3)


def main(out: str, checkpoint_dir: str, epochs: str, resume: str, seed: str = "7") -> None:
    torch.set_num_threads(1)
    images = np.random.default_rng(0).integers(0, 256, (704, 1, 28, 28), dtype=np.uint8)
    config = TrainConfig(
        epochs=int(epochs),
        group_size=32,
        seed=int(seed),
        device="cpu",
        progress="off",
        checkpoint_every=1,
        checkpoint_dir=checkpoint_dir,
        resume=resume == "1",
    )
    plan = random_group_plan(np.arange(640), 32, config.epochs, seed=config.seed)
    heldout = random_groups(np.arange(640, 704), 2, 32, seed=0)
    seed_everything(config.seed)
    model, _ = train(UGVAE(MODEL), images, plan, heldout, config)
    torch.save(model.state_dict(), out)


if __name__ == "__main__":
    main(*sys.argv[1:])
