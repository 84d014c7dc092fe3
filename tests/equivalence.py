"""Comparing two ways of training that should make the same updates, with bounds that hold on
any CPU, math library and thread count, yet fail on a real difference.

Two computations of the same float32 gradient differ only in the order of their sums (how a
batch is split over processes, how a compiler fuses kernels, how many threads share a
reduction). Reordering a float32 sum of L terms moves it by at most about L·ε relative to the
sum of the terms' sizes (ε = 2⁻²³ ≈ 1.2e-7); the longest reductions of these models are over a
few hundred to a thousand values (784 pixels, 512 features), so ``GRADIENT_RTOL = 1e-4`` bounds
the difference of two first-step gradients on any machine (measured: below 1e-6). Dropping a
process's share of the gradient, or a term of the loss, changes it by a large fraction.

After several Adam steps no such bound holds weight by weight: Adam divides each gradient by
its running size, so where a gradient is within rounding of zero, rounding alone can turn a
step around. What does hold:

- every weight: Adam moves a weight by at most ``lr · adam_step_bound(t)`` at step t, so two
  runs of n steps end at most ``2 · lr · Σ_t adam_step_bound(t)`` apart, whatever the
  rounding;
- most weights: a weight whose gradient is far above its rounding error takes the same steps
  in both runs up to ~1e-6 of their size. Rounding can change the steps of the few weights
  whose gradient is within rounding of zero, never of most weights; so 90% of the weights
  agree to ``n · lr / 1000``. A wrong gradient (a process's groups dropped, a term missing, a
  step skipped) changes the steps of most weights by a good fraction of ``lr``.
"""

from __future__ import annotations

import math

import torch

GRADIENT_RTOL = 1e-4
TYPICAL_QUANTILE = 0.9


def adam_step_bound(step: int, betas: tuple[float, float] = (0.9, 0.999)) -> float:
    """The largest ``|m̂/√v̂|`` of Adam at ``step`` (1-based), whatever the gradients.

    By Cauchy–Schwarz, ``|m_t| ≤ (1−β1)·√(Σ_j (β1²/β2)^j)·√(v_t/(1−β2))``; with the bias
    corrections, ``|m̂_t|/√v̂_t`` is at most the value returned (1 at step 1, 1.04 at step 10).
    """
    b1, b2 = betas
    geometric = sum((b1 * b1 / b2) ** j for j in range(step))
    return (
        math.sqrt(1 - b2**step)
        / (1 - b1**step)
        * (1 - b1)
        / math.sqrt(1 - b2)
        * math.sqrt(geometric)
    )


def adam_divergence_bound(steps: int, lr: float) -> float:
    """How far apart two Adam runs of ``steps`` steps at ``lr`` can end, weight by weight."""
    return 2 * lr * sum(adam_step_bound(t) for t in range(1, steps + 1))


def first_moments(optimizer_state: dict, names: list[str]) -> dict[str, torch.Tensor]:
    """Adam's ``exp_avg`` by parameter name from an optimizer ``state_dict``.

    After one step it is ``(1 − β1)·g``: the step's gradient, exact to one rounding.
    """
    return {names[index]: state["exp_avg"] for index, state in optimizer_state["state"].items()}


def gradient_differences(
    got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]
) -> dict[str, float]:
    """``‖got − expected‖ / ‖expected‖`` per tensor."""
    assert got.keys() == expected.keys()
    return {
        name: ((got[name] - value).norm() / value.norm().clamp_min(1e-30)).item()
        for name, value in expected.items()
    }


def assert_same_gradients(got: dict, expected: dict) -> float:
    """Every tensor within ``GRADIENT_RTOL`` of the other (relative norm); the worst."""
    differences = gradient_differences(got, expected)
    worst = max(differences, key=differences.get)
    assert differences[worst] <= GRADIENT_RTOL, (worst, differences[worst])
    return differences[worst]


def weight_differences(got: dict, expected: dict) -> torch.Tensor:
    """``|got − expected|`` of every floating-point weight, flattened."""
    assert got.keys() == expected.keys()
    return torch.cat(
        [
            (got[name] - value).abs().flatten()
            for name, value in expected.items()
            if value.is_floating_point()
        ]
    )


def typical_difference(differences: torch.Tensor) -> float:
    """The ``TYPICAL_QUANTILE`` quantile of the differences (90% are at most this)."""
    k = max(1, math.ceil(TYPICAL_QUANTILE * differences.numel()))
    return differences.kthvalue(k).values.item()


def assert_same_adam_training(got: dict, expected: dict, steps: int, lr: float) -> dict:
    """Two runs of ``steps`` Adam steps at ``lr`` made the same updates, up to rounding.

    Returns the measured figures (``largest``, ``typical``) and the bounds they met.
    """
    differences = weight_differences(got, expected)
    figures = {
        "largest": differences.max().item(),
        "largest_bound": adam_divergence_bound(steps, lr),
        "typical": typical_difference(differences),
        "typical_bound": steps * lr / 1000,
    }
    assert figures["largest"] <= figures["largest_bound"], figures
    assert figures["typical"] <= figures["typical_bound"], figures
    return figures


def assert_same_weights(got: dict, expected: dict) -> None:
    """A resumed run ended with the weights of the uninterrupted run, bit for bit.

    It repeats the uninterrupted run's operations on bit-identical state (the weights, Adam's
    moments and step count, every random generator, the same batches) with the same processes
    and thread counts; CPU kernels are deterministic for a given thread count, so no rounding
    differs, on any machine: the tolerance is zero. A skipped or repeated step moves most
    weights by about the learning rate.
    """
    assert got.keys() == expected.keys()
    differing = {
        name: (got[name] - value).abs().max().item()
        for name, value in expected.items()
        if not torch.equal(got[name], value)
    }
    assert not differing, differing
