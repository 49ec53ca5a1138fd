"""UNet++ (Zhou et al., 2018): nested, dense skip pathways between encoder and decoder."""

from __future__ import annotations

import torch
from torch import nn

from omniseg.models.builder import MODELS
from omniseg.models.encoders import UNetEncoder
from omniseg.models.layers import DoubleConv, make_upsample
from omniseg.models.layers.factory import ActLayer, NormLayer
from omniseg.models.layers.init import init_weights
from omniseg.models.semantic.base import SegmentationModel


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

    Example:
        >>> UNetPlusPlus(num_classes=3, depth=2, base_channels=8)(torch.randn(1, 3, 37, 45)).shape
        torch.Size([1, 3, 37, 45])
    """

    def __init__(
        self, *, num_classes: int, in_channels: int = 3, depth: int = 4, base_channels: int = 32,
        upsampling: str = "bilinear", deep_supervision: bool = False, norm_layer: NormLayer = "batch",
        act_layer: ActLayer = "relu",
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.encoder = UNetEncoder(in_channels=in_channels, depth=depth, base_channels=base_channels,
                                   norm_layer=norm_layer, act_layer=act_layer)
        widths = self.encoder.channels
        self.ups = nn.ModuleDict()
        self.nodes = nn.ModuleDict()
        for j in range(1, depth + 1):
            for i in range(depth + 1 - j):
                up, up_channels = make_upsample(upsampling, widths[i + 1])
                self.ups[f"{i}_{j}"] = up
                self.nodes[f"{i}_{j}"] = DoubleConv(j * widths[i] + up_channels, widths[i], norm_layer=norm_layer,
                                                    act_layer=act_layer)
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        self.aux = (nn.ModuleList(nn.Conv2d(widths[0], num_classes, 1) for _ in range(depth - 1))
                    if deep_supervision else None)
        self.depth = depth
        self.size_divisor = 2**depth
        for part in (self.encoder, self.ups, self.nodes, self.head, self.aux):
            if part is not None:
                init_weights(part)

    def _forward(self, x: torch.Tensor, aux: bool = False):
        grid = [[f] for f in self.encoder(x)]  # grid[i][j] = X[i][j]
        for j in range(1, self.depth + 1):
            for i in range(self.depth + 1 - j):
                key = f"{i}_{j}"
                grid[i].append(self.nodes[key](torch.cat([*grid[i][:j], self.ups[key](grid[i + 1][j - 1])], dim=1)))
        logits = self.head(grid[0][self.depth])
        if not aux:
            return logits
        return logits, [head(grid[0][j]) for head, j in zip(self.aux, range(1, self.depth))]
