"""Keeping track of the loss while training: per-image means of the ELBO terms, summed over the
processes of a process group, and the check that the step losses stayed finite."""

from __future__ import annotations

import torch
from torch import distributed as dist

from ugvae_pipeline.models.elbo import ELBOTerms
from ugvae_pipeline.training.device import in_process_group


class TermAverager:
    """Image-weighted running means of the ELBO terms, kept on the device (no sync per step)."""

    def __init__(self, device: torch.device) -> None:
        self.sums = torch.zeros(len(ELBOTerms.NAMES), dtype=torch.float64, device=device)
        self.images = 0

    def add(self, terms: ELBOTerms, n_images: int) -> None:
        values = torch.stack([getattr(terms, name).detach().float() for name in ELBOTerms.NAMES])
        self.sums += values * n_images
        self.images += n_images

    def all_reduce(self) -> None:
        """Sum over the processes of a process group (no-op without one)."""
        if in_process_group():
            images = torch.tensor(
                [float(self.images)], dtype=torch.float64, device=self.sums.device
            )
            both = torch.cat([self.sums, images])
            dist.all_reduce(both)
            self.sums, self.images = both[:-1], int(both[-1].item())

    def means(self) -> dict[str, float]:
        sums = self.sums.cpu().tolist()
        return {name: total / max(self.images, 1) for name, total in zip(ELBOTerms.NAMES, sums)}


def check_finite(step_losses: list[torch.Tensor], epoch: int, last_step: int) -> float:
    """Raise naming the first step whose loss was not finite; return the latest loss.

    ``step_losses`` are the losses of the steps up to ``last_step`` since the last check (kept
    on the device until now, so that a step waits for no sync); the list is emptied.
    """
    losses = torch.stack(step_losses).cpu()
    bad = (~torch.isfinite(losses)).nonzero()
    if len(bad):
        first = last_step - len(step_losses) + 1 + int(bad[0])
        raise FloatingPointError(
            f"loss became {float(losses[bad[0]].item())} at epoch {epoch}, step {first}; "
            "lower train.learning_rate, check the input images are in [0, 255], or raise model.var_x"
        )
    step_losses.clear()
    return float(losses[-1])
