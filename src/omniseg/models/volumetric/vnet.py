"""V-Net (Milletari et al., 3DV 2016): residual stages of 5x5x5 convolutions, strided down-convolutions."""

from __future__ import annotations

import torch
from torch import nn

from omniseg.models.builder import MODELS
from omniseg.models.layers.init import init_weights
from omniseg.models.semantic.base import SegmentationModel
from omniseg.models.volumetric.blocks import NORM_LAYERS_3D, ConvNormAct3d, make_act3d
from omniseg.errors import ConfigError


class ResidualStage(nn.Module):
    """``convs`` 5x5x5 convolutions with PReLU, the stage input added before the last activation."""

    def __init__(self, channels: int, convs: int, norm: str, in_channels: int | None = None) -> None:
        super().__init__()
        first = in_channels or channels
        self.convs = nn.Sequential(*[
            ConvNormAct3d(first if i == 0 else channels, channels, 5, norm=norm, act="prelu" if i < convs - 1 else None)
            for i in range(convs)
        ])
        self.act = make_act3d("prelu", channels)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if x.shape[1] == self.channels else x.repeat(1, self.channels // x.shape[1], 1, 1, 1)
        return self.act(self.convs(x) + residual)


@MODELS.register("vnet", task="semantic", volumetric=True,
                 description="V-Net for volumes, residual 5x5x5 stages (Milletari et al. 2016)")
class VNet(SegmentationModel):
    """V-Net.

    Left side: stages of 1, 2, 3, 3, 3 convolutions (5x5x5, PReLU) learning residuals, joined by 2x2x2
    stride-2 convolutions that double the channels (16 -> 256). Right side: 2x2x2 transposed
    convolutions, concatenation with the left stage of the same resolution, stages of 3, 3, 2, 1
    convolutions; a 1x1x1 classifier. The first stage's residual is the input repeated to 16 channels.

    Args:
        num_classes: K; in_channels: C (1 in the paper; the first stage needs 16 divisible by C).
        base_channels: 16 in the paper.
        norm: ``"batch"`` (as common re-implementations; the paper has none: ``"none"``), ``"instance"``, ``"group"``.

    Shape: ``[N, C, D, H, W] -> [N, K, D, H, W]``; inputs are padded to a multiple of 16.

    Train it with the Dice loss that V-Net introduced: ``build_loss("vnet_dice")``.

    Example:
        >>> model = VNet(num_classes=2, base_channels=4).eval()
        >>> model(torch.randn(1, 1, 9, 14, 11)).shape
        torch.Size([1, 2, 9, 14, 11])
    """

    spatial_dims = 3
    size_divisor = 16

    def __init__(self, *, num_classes: int, in_channels: int = 1, base_channels: int = 16, norm: str = "batch") -> None:
        super().__init__()
        if base_channels % in_channels:
            raise ConfigError(f"base_channels ({base_channels}) must be a multiple of in_channels ({in_channels}) "
                             "for the first stage's residual")
        self.num_classes = num_classes
        left_convs, right_convs = (1, 2, 3, 3, 3), (3, 3, 2, 1)
        widths = [base_channels * 2**i for i in range(5)]
        self.left = nn.ModuleList([ResidualStage(widths[0], left_convs[0], norm, in_channels=in_channels)])
        self.downs = nn.ModuleList()
        for i in range(1, 5):
            self.downs.append(ConvNormAct3d(widths[i - 1], widths[i], 2, stride=2, padding=0, norm=norm, act="prelu"))
            self.left.append(ResidualStage(widths[i], left_convs[i], norm))
        self.ups, self.right = nn.ModuleList(), nn.ModuleList()
        channels = widths[4]
        for i, convs in zip(range(3, -1, -1), right_convs):
            out = 2 * widths[i]  # half from the up-convolution, half from the skip
            self.ups.append(nn.Sequential(nn.ConvTranspose3d(channels, out // 2, 2, stride=2, bias=norm == "none"),
                                          NORM_LAYERS_3D.get(norm)(out // 2), make_act3d("prelu", out // 2)))
            self.right.append(ResidualStage(out, convs, norm))
            channels = out
        self.head = nn.Conv3d(channels, num_classes, 1)
        init_weights(self)

    def _forward(self, x: torch.Tensor, aux: bool = False) -> torch.Tensor:
        x = self.left[0](x)
        skips = [x]
        for down, stage in zip(self.downs, self.left[1:]):
            x = stage(down(x))
            skips.append(x)
        for up, stage, skip in zip(self.ups, self.right, reversed(skips[:-1])):
            x = stage(torch.cat([up(x), skip], dim=1))
        return self.head(x)
