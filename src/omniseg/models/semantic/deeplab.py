"""DeepLabV3 (Chen et al., 2017) and DeepLabV3+ (Chen et al., 2018) on dilated timm encoders."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from omniseg.models.builder import MODELS
from omniseg.models.encoders import TimmEncoder
from omniseg.models.layers.aspp import ASPP, atrous_conv
from omniseg.models.layers.conv import ConvNormAct
from omniseg.models.layers.init import init_weights
from omniseg.models.semantic.base import SegmentationModel
from omniseg.errors import ConfigError


class FCNHead(nn.Sequential):
    """Auxiliary classifier: 3x3 conv to C/4, norm, act, dropout, 1x1 to K (as torchvision's DeepLab)."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__(ConvNormAct(in_channels, in_channels // 4, 3), nn.Dropout(0.1),
                         nn.Conv2d(in_channels // 4, num_classes, 1))


class DeepLab(SegmentationModel):
    """DeepLabV3 (``plus=False``) or DeepLabV3+ (``plus=True``).

    V3: a dilated encoder at ``output_stride`` 16 or 8, ASPP, a 3x3 conv and a 1x1 classifier, bilinear
    upsampling to the input. V3+ adds a decoder: stride-4 encoder features reduced to 48 channels,
    concatenated with the upsampled ASPP output, two 3x3 convolutions (atrous separable when
    ``separable``), the classifier, and a 4x upsampling.

    Args:
        num_classes: K.
        in_channels: input channels.
        encoder: a timm backbone that supports ``output_stride`` (ResNets, Xception-65, ...).
        encoder_weights: ``None``, ``"imagenet"`` or a weights file (see :class:`TimmEncoder`).
        output_stride: 16 (ASPP rates 6/12/18) or 8 (12/24/36).
        separable: atrous depthwise-separable convolutions in ASPP and decoder (the V3+ paper's choice).
        aux_head: an auxiliary FCN head on the next-to-last stage, returned by ``forward(x, aux=True)``.

    Example:
        >>> model = DeepLab(num_classes=4, encoder="resnet18", plus=True)
        >>> model(torch.randn(2, 3, 65, 70)).shape
        torch.Size([2, 4, 65, 70])
    """

    def __init__(
        self, *, num_classes: int, in_channels: int = 3, encoder: str = "resnet50", encoder_weights: str | None = None,
        output_stride: int = 16, plus: bool = False, separable: bool | None = None, aux_head: bool = False,
    ) -> None:
        super().__init__()
        if output_stride not in (8, 16):
            raise ConfigError(f"output_stride must be 8 or 16, got {output_stride}")
        self.num_classes, self.plus = num_classes, plus
        separable = plus if separable is None else separable
        self.encoder = TimmEncoder(encoder, in_channels=in_channels, weights=encoder_weights, output_stride=output_stride)
        if self.encoder.strides[-1] != output_stride:
            raise ConfigError(f"encoder {encoder!r} does not support output_stride {output_stride}; try a ResNet")
        rates = (6, 12, 18) if output_stride == 16 else (12, 24, 36)
        self.aspp = ASPP(self.encoder.channels[-1], 256, rates=rates, separable=separable)
        if plus:
            self.low_level_index = self.encoder.strides.index(4)
            self.reduce = ConvNormAct(self.encoder.channels[self.low_level_index], 48, 1)
            self.head = nn.Sequential(atrous_conv(256 + 48, 256, 1, separable), atrous_conv(256, 256, 1, separable),
                                      nn.Conv2d(256, num_classes, 1))
        else:
            self.head = nn.Sequential(ConvNormAct(256, 256, 3), nn.Conv2d(256, num_classes, 1))
        self.aux = FCNHead(self.encoder.channels[-2], num_classes) if aux_head else None
        self.size_divisor = 32 if plus else output_stride  # V3+ aligns stride-4 and stride-os features
        for part in (self.aspp, self.head, getattr(self, "reduce", None), self.aux):
            if part is not None:
                init_weights(part)

    def _forward(self, x: torch.Tensor, aux: bool = False):
        size = x.shape[-2:]
        features = self.encoder(x)
        y = self.aspp(features[-1])
        if self.plus:
            low = self.reduce(features[self.low_level_index])
            y = F.interpolate(y, size=low.shape[-2:], mode="bilinear", align_corners=False)
            y = torch.cat([y, low], dim=1)
        logits = F.interpolate(self.head(y), size=size, mode="bilinear", align_corners=False)
        if not aux:
            return logits
        extra = F.interpolate(self.aux(features[-2]), size=size, mode="bilinear", align_corners=False)
        return logits, [extra]


def _register(name: str, plus: bool, description: str) -> None:
    def build(
        *, num_classes: int, in_channels: int = 3, encoder: str = "resnet50", encoder_weights: str | None = None,
        output_stride: int = 16, separable: bool = plus, aux_head: bool = False,
    ) -> DeepLab:
        return DeepLab(num_classes=num_classes, in_channels=in_channels, encoder=encoder, encoder_weights=encoder_weights,
                       output_stride=output_stride, plus=plus, separable=separable, aux_head=aux_head)

    build.__doc__ = f"{description} (see :class:`DeepLab`)."
    MODELS.add(name, build, task="semantic", description=description)


_register("deeplabv3", False, "DeepLabV3: dilated encoder + ASPP (Chen et al. 2017)")
_register("deeplabv3plus", True, "DeepLabV3+: ASPP + decoder, separable convs (Chen et al. 2018)")
