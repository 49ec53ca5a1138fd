"""Upsampling layers selectable by name where a decoder upsamples."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from omniseg.errors import ConfigError

UPSAMPLING_MODES = ("transposed", "bilinear", "nearest", "bed_of_nails", "pixel_shuffle")


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


class BedOfNails(nn.Module):
    """Zero insertion: each input value goes to the top-left of its ``scale x scale`` cell, zeros elsewhere.

    Example:
        >>> BedOfNails(2)(torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]))[0, 0]
        tensor([[1., 0., 2., 0.],
                [0., 0., 0., 0.],
                [3., 0., 4., 0.],
                [0., 0., 0., 0.]])
    """

    def __init__(self, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        out = x.new_zeros(n, c, h * self.scale, w * self.scale)
        out[..., :: self.scale, :: self.scale] = x
        return out


class MaxUnpool(nn.Module):
    """Max-unpooling (SegNet): each value returns to where its pooling window's maximum was, zeros
    elsewhere. ``forward(x, indices, output_size)`` takes the indices of ``MaxPool2d(return_indices=True)``.

    Written as a scatter into zeros: pooling windows do not overlap, so every target is written once and
    the result is deterministic (``nn.MaxUnpool2d`` refuses to run under
    ``torch.use_deterministic_algorithms(True)``).
    """

    def __init__(self, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor, indices: torch.Tensor, output_size: torch.Size | None = None) -> torch.Tensor:
        n, c, h, w = x.shape
        height, width = (output_size[-2:] if output_size is not None else (h * self.scale, w * self.scale))
        out = x.new_zeros(n, c, height * width)
        out = out.scatter(2, indices.flatten(2), x.flatten(2))
        return out.view(n, c, height, width)


class PixelShuffleUpsample(nn.Sequential):
    """Sub-pixel convolution (Shi et al., 2016): a 1x1 conv to ``C * scale**2`` channels, then pixel shuffle."""

    def __init__(self, channels: int, scale: int = 2) -> None:
        super().__init__(nn.Conv2d(channels, channels * scale**2, kernel_size=1), nn.PixelShuffle(scale))


def bilinear_kernel(channels: int, kernel_size: int) -> torch.Tensor:
    """Weights ``[C, C, k, k]`` that make a transposed convolution bilinear interpolation, channel by
    channel (FCN's initialisation of its learnable upsampling)."""
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    grid = torch.arange(kernel_size, dtype=torch.float64)
    filt = 1 - (grid - center).abs() / factor
    weight = torch.zeros(channels, channels, kernel_size, kernel_size, dtype=torch.float64)
    weight[range(channels), range(channels)] = filt[:, None] * filt[None, :]
    return weight.float()


def make_upsample(mode: str, in_channels: int, *, scale: int = 2) -> tuple[nn.Module, int]:
    """An upsampling layer and its output channels.

    ``"transposed"`` is a learnable ``scale x scale`` transposed convolution that halves the channels
    (U-Net's up-convolution); ``"bilinear"``, ``"nearest"`` and ``"bed_of_nails"`` are parameter-free and
    keep them; ``"pixel_shuffle"`` is a learnable sub-pixel convolution that keeps them. Max-unpooling
    needs the encoder's pooling indices, so decoders use :class:`MaxUnpool` directly.
    """
    if mode == "transposed":
        out_channels = max(in_channels // 2, 1)
        return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=scale, stride=scale), out_channels
    if mode in ("bilinear", "nearest"):
        return Interpolate(scale, mode), in_channels
    if mode == "bed_of_nails":
        return BedOfNails(scale), in_channels
    if mode == "pixel_shuffle":
        return PixelShuffleUpsample(in_channels, scale), in_channels
    raise ConfigError(f"unknown upsampling {mode!r}; choose one of {', '.join(UPSAMPLING_MODES)}")
