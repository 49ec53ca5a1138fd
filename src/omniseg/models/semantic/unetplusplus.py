"""UNet++ (Zhou et al., 2018): nested, dense skip pathways between encoder and decoder."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from omniseg.models.builder import MODELS
from omniseg.models.encoders import TimmEncoder, UNetEncoder
from omniseg.models.layers import DoubleConv, make_upsample
from omniseg.models.layers.factory import ActLayer, NormLayer
from omniseg.models.layers.init import init_weights
from omniseg.models.semantic.base import SegmentationModel
from omniseg.errors import ConfigError


@MODELS.register("unetplusplus", task="semantic", description="UNet++: nested dense skip pathways (Zhou et al. 2018)")
class UNetPlusPlus(SegmentationModel):
    """UNet++: node ``X[i][j]`` (level ``i``, column ``j``) convolves the concatenation of every earlier node of
    its level, ``X[i][0..j-1]``, with the upsampled ``X[i+1][j-1]``; the output is ``X[0][depth]``.

    With ``deep_supervision``, 1x1 heads on ``X[0][1..depth-1]`` are returned by ``forward(x, aux=True)``
    (training adds their losses), so a model can be pruned to a shallower column at inference.

    Args:
        num_classes: K.
        in_channels: input channels.
        depth: poolings of the encoder (4 in the paper).
        base_channels: width of level 0 (32 in the paper: 32, 64, 128, 256, 512).
        upsampling: ``"bilinear"``, ``"nearest"`` or ``"transposed"``.
        deep_supervision: add the auxiliary heads.
        encoder: ``None`` for the paper's encoder, or a timm model name; its stages are the levels (node
            widths follow the stage widths), and logits at the first stage's stride are upsampled
            bilinearly to the input.
        encoder_weights: for a timm encoder: ``None``, ``"imagenet"`` or a weights file.

    Example:
        >>> UNetPlusPlus(num_classes=3, depth=2, base_channels=8)(torch.randn(1, 3, 37, 45)).shape
        torch.Size([1, 3, 37, 45])
    """

    def __init__(
        self, *, num_classes: int, in_channels: int = 3, depth: int = 4, base_channels: int = 32,
        upsampling: str = "bilinear", deep_supervision: bool = False, norm_layer: NormLayer = "batch",
        act_layer: ActLayer = "relu", encoder: str | None = None, encoder_weights: str | None = None,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        if encoder is None:
            if encoder_weights is not None:
                raise ConfigError("encoder_weights needs a timm encoder (encoder='resnet34', ...)")
            self.encoder = UNetEncoder(in_channels=in_channels, depth=depth, base_channels=base_channels,
                                       norm_layer=norm_layer, act_layer=act_layer)
        else:
            self.encoder = TimmEncoder(encoder, in_channels=in_channels, weights=encoder_weights)
            depth = len(self.encoder.strides) - 1
        widths, strides = self.encoder.channels, self.encoder.strides
        self.ups = nn.ModuleDict()
        self.nodes = nn.ModuleDict()
        for j in range(1, depth + 1):
            for i in range(depth + 1 - j):
                up, up_channels = make_upsample(upsampling, widths[i + 1], scale=strides[i + 1] // strides[i])
                self.ups[f"{i}_{j}"] = up
                self.nodes[f"{i}_{j}"] = DoubleConv(j * widths[i] + up_channels, widths[i], norm_layer=norm_layer,
                                                    act_layer=act_layer)
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        self.aux = (nn.ModuleList(nn.Conv2d(widths[0], num_classes, 1) for _ in range(depth - 1))
                    if deep_supervision else None)
        self.depth = depth
        self.size_divisor = strides[-1]
        own_parts = (self.ups, self.nodes, self.head, self.aux)
        for part in own_parts if encoder is not None else (self.encoder, *own_parts):
            if part is not None:
                init_weights(part)

    def _forward(self, x: torch.Tensor, aux: bool = False):
        grid = [[f] for f in self.encoder(x)]  # grid[i][j] = X[i][j]
        for j in range(1, self.depth + 1):
            for i in range(self.depth + 1 - j):
                key = f"{i}_{j}"
                grid[i].append(self.nodes[key](torch.cat([*grid[i][:j], self.ups[key](grid[i + 1][j - 1])], dim=1)))
        size = x.shape[-2:]

        def full(y: torch.Tensor) -> torch.Tensor:  # timm encoders start at stride 2 or 4
            return y if y.shape[-2:] == size else F.interpolate(y, size=size, mode="bilinear", align_corners=False)

        logits = full(self.head(grid[0][self.depth]))
        if not aux:
            return logits
        return logits, [full(head(grid[0][j])) for head, j in zip(self.aux, range(1, self.depth))]
