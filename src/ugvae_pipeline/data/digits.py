"""The UCI optdigits images shipped with scikit-learn, framed like MNIST (offline)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from ugvae_pipeline.data.splits import image_table, stratified_split

MNIST_SIZE, MNIST_BOX = 28, 20  # MNIST: digit size-normalised into 20x20, centred by mass in 28x28


def centre_of_mass_offset(digit: np.ndarray, canvas: int) -> tuple[int, int]:
    """Top-left ``(row, col)`` placing ``digit`` ``[h, w]``'s centre of mass at the canvas centre."""
    mass = digit.sum()
    rows, cols = np.indices(digit.shape)
    centre = (
        ((rows * digit).sum() / mass, (cols * digit).sum() / mass)
        if mass > 0
        else ((digit.shape[0] - 1) / 2,) * 2
    )
    limits = (canvas - digit.shape[0], canvas - digit.shape[1])
    return tuple(
        int(np.clip(np.rint((canvas - 1) / 2 - c), 0, lim)) for c, lim in zip(centre, limits)
    )


def mnist_framed(digits: np.ndarray) -> np.ndarray:
    """Small digits ``[N, h, w]`` (any non-negative scale) → uint8 ``[N, 1, 28, 28]`` framed as MNIST.

    Each digit is scaled to 20x20 (PIL bilinear), its intensity stretched so that its brightest
    pixel is 255 (MNIST strokes saturate), and pasted so that its centre of mass sits at the
    centre of the 28x28 canvas.
    """
    framed = np.zeros((len(digits), 1, MNIST_SIZE, MNIST_SIZE), dtype=np.uint8)
    for index, digit in enumerate(digits):
        box = Image.fromarray(digit.astype(np.float32), "F").resize(
            (MNIST_BOX, MNIST_BOX), Image.BILINEAR
        )
        box = np.asarray(box)
        pixels = np.clip(np.rint(box * (255 / max(box.max(), 1e-6))), 0, 255).astype(np.uint8)
        top, left = centre_of_mass_offset(pixels.astype(np.float64), MNIST_SIZE)
        framed[index, 0, top : top + MNIST_BOX, left : left + MNIST_BOX] = pixels
    return framed


def load_uci_digits(
    validation_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, pd.DataFrame]:
    """The 1,797 real 8x8 UCI digits (values 0..16) as MNIST-like ``[1797, 1, 28, 28]`` uint8."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    labels = np.asarray(digits.target)
    images = mnist_framed(np.asarray(digits.images))
    return images, image_table(
        labels, stratified_split(labels, validation_fraction, test_fraction, seed), "uci_digits"
    )
