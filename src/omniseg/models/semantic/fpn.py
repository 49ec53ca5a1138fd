"""FPN semantic segmentation (Kirillov et al., 2019, the Panoptic FPN semantic branch)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from omniseg.models.builder import MODELS
from omniseg.models.encoders import TimmEncoder
from omniseg.models.layers.conv import ConvNormAct
from omniseg.models.layers.init import init_weights
from omniseg.models.layers.upsample import Interpolate
from omniseg.models.semantic.base import SegmentationModel
from omniseg.errors import ConfigError


@MODELS.register("fpn", task="semantic", description="FPN: feature pyramid + semantic branch (Kirillov et al. 2019)")
class FPN(SegmentationModel):
    """Feature pyramid on the stride-4..32 encoder stages (1x1 laterals, top-down nearest upsampling and
    addition), then for each level 3x3 conv + GroupNorm + ReLU + 2x upsampling down to stride 4, summed,
    classified and upsampled 4x.

    Example:
        >>> FPN(num_classes=3, encoder="resnet18")(torch.randn(2, 3, 50, 70)).shape
        torch.Size([2, 3, 50, 70])
    """

    def __init__(
        self, *, num_classes: int, in_channels: int = 3, encoder: str = "resnet34", encoder_weights: str | None = None,
        pyramid_channels: int = 256, segmentation_channels: int = 128, dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.encoder = TimmEncoder(encoder, in_channels=in_channels, weights=encoder_weights)
        self.levels = [i for i, s in enumerate(self.encoder.strides) if s >= 4]
        if [self.encoder.strides[i] for i in self.levels][:1] != [4]:
            raise ConfigError(f"FPN needs a stride-4 stage; encoder {encoder!r} has strides {self.encoder.strides}")
        self.laterals = nn.ModuleList(nn.Conv2d(self.encoder.channels[i], pyramid_channels, 1) for i in self.levels)
        self.branches = nn.ModuleList()
        for i in self.levels:
            steps = max(int(self.encoder.strides[i] // 4).bit_length() - 1, 0)  # 2x upsamplings to stride 4
            blocks: list[nn.Module] = [ConvNormAct(pyramid_channels, segmentation_channels, 3, norm_layer="group")]
            for step in range(steps):
                blocks.append(Interpolate(2, "bilinear"))
                if step < steps - 1:
                    blocks.append(ConvNormAct(segmentation_channels, segmentation_channels, 3, norm_layer="group"))
            self.branches.append(nn.Sequential(*blocks))
        self.head = nn.Sequential(nn.Dropout2d(dropout), nn.Conv2d(segmentation_channels, num_classes, 1))
        self.size_divisor = max(self.encoder.strides)
        for part in (self.laterals, self.branches, self.head):
            init_weights(part)

    def _forward(self, x: torch.Tensor, aux: bool = False):
        features = self.encoder(x)
        pyramid = [lateral(features[i]) for lateral, i in zip(self.laterals, self.levels)]
        for k in range(len(pyramid) - 2, -1, -1):  # top-down pathway
            pyramid[k] = pyramid[k] + F.interpolate(pyramid[k + 1], size=pyramid[k].shape[-2:], mode="nearest")
        merged = sum(branch(p) for branch, p in zip(self.branches, pyramid))
        return F.interpolate(self.head(merged), scale_factor=4, mode="bilinear", align_corners=False)
