"""The U-Net contracting path as an encoder: DoubleConv then 2x2 max pooling, channels doubling."""

from __future__ import annotations

import torch
from torch import nn

from omniseg.models.layers import DoubleConv
from omniseg.models.layers.factory import ActLayer, NormLayer
from omniseg.errors import ConfigError


class UNetEncoder(nn.Module):
    """``depth`` poolings, ``base_channels * 2**i`` channels at stride ``2**i``; ``padding=0`` gives the
    paper's valid convolutions (each DoubleConv trims 2 pixels per side).

    ``forward(x: [N, C, H, W]) -> [f0, ..., f_depth]`` with ``f_i: [N, base * 2**i, H / 2**i, W / 2**i]``.
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        depth: int = 4,
        base_channels: int = 64,
        norm_layer: NormLayer = "batch",
        act_layer: ActLayer = "relu",
        padding: int = 1,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ConfigError(f"depth must be at least 1, got {depth}")
        self.channels = [base_channels * 2**i for i in range(depth + 1)]
        self.strides = [2**i for i in range(depth + 1)]
        self.pool = nn.MaxPool2d(2)
        self.blocks = nn.ModuleList()
        previous = in_channels
        for channels in self.channels:
            self.blocks.append(DoubleConv(previous, channels, padding=padding, norm_layer=norm_layer, act_layer=act_layer))
            previous = channels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [self.blocks[0](x)]
        for block in self.blocks[1:]:
            features.append(block(self.pool(features[-1])))
        return features
