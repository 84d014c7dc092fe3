"""Encoder/decoder pairs of the official code (docs/model.md §6), plus ``conv28``.

Each architecture is a registry entry, so a new dataset shape is a new entry here, not a
branch inside the model. An encoder maps images ``[N, C, H, W]`` to features ``[N, 256]``;
a decoder maps codes ``[N, dim_in]`` to pixel means ``[N, C, H, W]`` in (0, 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

FEATURE_DIM = 256


@dataclass(frozen=True)
class Architecture:
    image_size: int
    build_encoder: Callable[[int], nn.Module]  # channels -> module
    build_decoder: Callable[[int, int], nn.Module]  # (dim_in, channels) -> module


def _mlp28_encoder(channels: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(channels * 28 * 28, FEATURE_DIM), nn.ReLU())


def _mlp28_decoder(dim_in: int, channels: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(dim_in, FEATURE_DIM),
        nn.ReLU(),
        nn.Linear(FEATURE_DIM, channels * 28 * 28),
        nn.Sigmoid(),
        nn.Unflatten(1, (channels, 28, 28)),
    )


def _conv28_encoder(channels: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(channels, 16, 4, 2, 1),  # 16 x 14 x 14
        nn.ReLU(),
        nn.Conv2d(16, 32, 4, 2, 1),  # 32 x 7 x 7
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, FEATURE_DIM),
        nn.ReLU(),
    )


def _conv_block(c_in: int, c_out: int, *conv_args: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, *conv_args), nn.BatchNorm2d(c_out), nn.ReLU()]


def _conv64_encoder(channels: int) -> nn.Module:
    return nn.Sequential(
        *_conv_block(channels, 32, 4, 2, 1),  # 32 x 32 x 32
        *_conv_block(32, 32, 4, 2, 1),  # 32 x 16 x 16
        *_conv_block(32, 64, 4, 2, 1),  # 64 x 8 x 8
        *_conv_block(64, 64, 4, 2, 1),  # 64 x 4 x 4
        *_conv_block(64, FEATURE_DIM, 4, 1),  # 256 x 1 x 1
        nn.Flatten(),
    )


def _conv64_decoder(dim_in: int, channels: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(dim_in, FEATURE_DIM),
        nn.Unflatten(1, (FEATURE_DIM, 1, 1)),
        nn.ReLU(),
        nn.ConvTranspose2d(FEATURE_DIM, 64, 4),  # 64 x 4 x 4
        nn.ReLU(),
        nn.ConvTranspose2d(64, 64, 4, 2, 1),  # 64 x 8 x 8
        nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 4, 2, 1),  # 32 x 16 x 16
        nn.ReLU(),
        nn.ConvTranspose2d(32, 32, 4, 2, 1),  # 32 x 32 x 32
        nn.ReLU(),
        nn.ConvTranspose2d(32, channels, 4, 2, 1),  # C x 64 x 64
        nn.Sigmoid(),
    )


ARCHITECTURES: dict[str, Architecture] = {
    # the official "k_vae" architecture, for 28x28 images (MNIST)
    "mlp28": Architecture(28, _mlp28_encoder, _mlp28_decoder),
    # not official: a small convolutional encoder for 28x28 with the mlp28 decoder
    "conv28": Architecture(28, _conv28_encoder, _mlp28_decoder),
    # the official "beta_vae" architecture, for 64x64 images (CelebA, faces, cars, chairs)
    "conv64": Architecture(64, _conv64_encoder, _conv64_decoder),
}
