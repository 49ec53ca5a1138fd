"""Atrous spatial pyramid pooling and atrous depthwise-separable convolution (DeepLabV3/V3+)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from omniseg.models.layers.conv import ConvNormAct


class SeparableConvNormAct(nn.Sequential):
    """Atrous depthwise-separable convolution: depthwise 3x3 (dilated) -> norm -> act -> pointwise 1x1 ->
    norm -> act (the DeepLabV3+ variant with a norm and activation after each part)."""

    def __init__(self, in_channels: int, out_channels: int, *, dilation: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_channels, in_channels, 3, padding=dilation, dilation=dilation, groups=in_channels, bias=False),
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            ConvNormAct(in_channels, out_channels, 1),
        )


def atrous_conv(in_channels: int, out_channels: int, dilation: int, separable: bool) -> nn.Module:
    """A 3x3 atrous convolution block, separable or not."""
    if separable:
        return SeparableConvNormAct(in_channels, out_channels, dilation=dilation)
    return ConvNormAct(in_channels, out_channels, 3, dilation=dilation)


class ImagePooling(nn.Module):
    """ASPP's image-level branch: global average pool -> 1x1 conv -> norm -> act -> upsample back."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.project = ConvNormAct(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.project(self.pool(x)), size=x.shape[-2:], mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (Chen et al., 2017): a 1x1 conv, 3x3 atrous convs at ``rates``,
    and image pooling, concatenated and projected to ``out_channels``.

    The paper's rates are (6, 12, 18) at output stride 16 and (12, 24, 36) at output stride 8.
    Shape: ``[N, C, h, w] -> [N, out_channels, h, w]``. (Training needs batches of 2 or more: the image
    pooling branch normalises a 1x1 map.)
    """

    def __init__(
        self, in_channels: int, out_channels: int = 256, *, rates: Sequence[int] = (6, 12, 18),
        separable: bool = False, dropout: float = 0.1,
    ) -> None:
        super().__init__()
        branches: list[nn.Module] = [ConvNormAct(in_channels, out_channels, 1)]
        branches += [atrous_conv(in_channels, out_channels, rate, separable) for rate in rates]
        branches.append(ImagePooling(in_channels, out_channels))
        self.branches = nn.ModuleList(branches)
        self.project = nn.Sequential(ConvNormAct(out_channels * len(branches), out_channels, 1), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([branch(x) for branch in self.branches], dim=1))
