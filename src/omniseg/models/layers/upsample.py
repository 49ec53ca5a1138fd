"""Upsampling layers selectable by name where a decoder upsamples."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

UPSAMPLING_MODES = ("transposed", "bilinear", "nearest")


class Interpolate(nn.Module):
    """Parameter-free upsampling by ``scale`` (``[N, C, H, W] -> [N, C, sH, sW]``)."""

    def __init__(self, scale: int = 2, mode: str = "nearest") -> None:
        super().__init__()
        self.scale, self.mode = scale, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        align = False if self.mode == "bilinear" else None
        return F.interpolate(x, scale_factor=self.scale, mode=self.mode, align_corners=align)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, mode={self.mode!r}"


def make_upsample(mode: str, in_channels: int, *, scale: int = 2) -> tuple[nn.Module, int]:
    """An upsampling layer and its output channels.

    ``"transposed"`` is a learnable ``scale x scale`` transposed convolution that halves the channels
    (U-Net's up-convolution); ``"bilinear"`` and ``"nearest"`` are parameter-free and keep them.
    """
    if mode == "transposed":
        out_channels = max(in_channels // 2, 1)
        return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=scale, stride=scale), out_channels
    if mode in ("bilinear", "nearest"):
        return Interpolate(scale, mode), in_channels
    raise ValueError(f"unknown upsampling {mode!r}; choose one of {', '.join(UPSAMPLING_MODES)}")
