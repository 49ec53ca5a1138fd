"""PSPNet (Zhao et al., 2017): a pyramid pooling module on a dilated encoder."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from omniseg.models.builder import MODELS
from omniseg.models.encoders import TimmEncoder
from omniseg.models.layers.conv import ConvNormAct
from omniseg.models.layers.init import init_weights
from omniseg.models.semantic.base import SegmentationModel
from omniseg.models.semantic.deeplab import FCNHead


class PyramidPooling(nn.Module):
    """Average-pool to each of ``bins`` x ``bins`` grids, reduce to C/len(bins) channels, upsample back and
    concatenate with the input: ``[N, C, h, w] -> [N, 2C, h, w]``."""

    def __init__(self, in_channels: int, bins: Sequence[int] = (1, 2, 3, 6)) -> None:
        super().__init__()
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), ConvNormAct(in_channels, in_channels // len(bins), 1)) for b in bins
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [F.interpolate(stage(x), size=size, mode="bilinear", align_corners=False) for stage in self.stages]
        return torch.cat([x, *pooled], dim=1)


@MODELS.register("pspnet", task="semantic", description="PSPNet: pyramid pooling on a dilated encoder (Zhao et al. 2017)")
class PSPNet(SegmentationModel):
    """PSPNet: dilated encoder (output stride 8), pyramid pooling (bins 1, 2, 3, 6), a 3x3 conv, dropout,
    the classifier and bilinear upsampling; an auxiliary FCN head on the next-to-last stage (the paper's
    deep supervision, weight 0.4 in its loss) via ``forward(x, aux=True)``.

    Example:
        >>> PSPNet(num_classes=3, encoder="resnet18")(torch.randn(2, 3, 50, 70)).shape
        torch.Size([2, 3, 50, 70])
    """

    def __init__(
        self, *, num_classes: int, in_channels: int = 3, encoder: str = "resnet50", encoder_weights: str | None = None,
        output_stride: int = 8, aux_head: bool = True,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.encoder = TimmEncoder(encoder, in_channels=in_channels, weights=encoder_weights, output_stride=output_stride)
        channels = self.encoder.channels[-1]
        self.ppm = PyramidPooling(channels)
        self.head = nn.Sequential(ConvNormAct(2 * channels, 512, 3), nn.Dropout(0.1), nn.Conv2d(512, num_classes, 1))
        self.aux = FCNHead(self.encoder.channels[-2], num_classes) if aux_head else None
        self.size_divisor = output_stride
        for part in (self.ppm, self.head, self.aux):
            if part is not None:
                init_weights(part)

    def _forward(self, x: torch.Tensor, aux: bool = False):
        size = x.shape[-2:]
        features = self.encoder(x)
        logits = F.interpolate(self.head(self.ppm(features[-1])), size=size, mode="bilinear", align_corners=False)
        if not aux:
            return logits
        return logits, [F.interpolate(self.aux(features[-2]), size=size, mode="bilinear", align_corners=False)]
