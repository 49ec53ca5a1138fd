"""FCN-32s, FCN-16s and FCN-8s (Long, Shelhamer & Darrell, 2015) on a VGG16 trunk."""

from __future__ import annotations

import torch
from torch import nn

from omniseg.models.builder import MODELS
from omniseg.models.encoders.vgg import load_vgg16_weights, vgg16_stages, vgg_stage
from omniseg.models.layers import bilinear_kernel
from omniseg.models.semantic.base import SegmentationModel
from omniseg.errors import ConfigError


def _upsampler(num_classes: int, scale: int) -> nn.ConvTranspose2d:
    """A learnable ``scale``x transposed convolution initialised to bilinear interpolation."""
    layer = nn.ConvTranspose2d(num_classes, num_classes, 2 * scale, stride=scale, padding=scale // 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(bilinear_kernel(num_classes, 2 * scale))
    return layer


class FCN(SegmentationModel):
    """Fully convolutional network: VGG16 with fc6/fc7 as convolutions, a 1x1 class scorer, and
    learnable upsampling (transposed convolutions initialised to bilinear) with skip fusion.

    ``stride=32`` is FCN-32s (one 32x upsampling), ``16`` fuses pool4 (FCN-16s), ``8`` also fuses pool3
    (FCN-8s). The skip scorers start at zero, as in the paper, so a finer FCN starts as its coarser parent.
    fc6 is a 7x7 convolution with padding 3 (the paper padded the input by 100 pixels instead); inputs are
    padded to a multiple of 32 and the output cropped back.

    Args:
        num_classes: K.
        in_channels: input image channels.
        stride: 32, 16 or 8.
        dropout: dropout after fc6 and fc7 (0.5 in the paper).
        width: channel multiplier of the VGG16 trunk and fc6/fc7 (1.0: the paper's; pretrained weights need 1.0).
        encoder_weights: ``None``, ``"imagenet"`` (torchvision's VGG16, downloaded when online) or a file
            with the state dict of ``torchvision.models.vgg16()``: the trunk and fc6/fc7, as the paper
            initialised FCN (see :func:`load_vgg16_weights`).

    Example:
        >>> FCN(num_classes=21, stride=8)(torch.randn(1, 3, 70, 90)).shape
        torch.Size([1, 21, 70, 90])
    """

    size_divisor = 32

    def __init__(self, *, num_classes: int, in_channels: int = 3, stride: int = 8, dropout: float = 0.5,
                 encoder_weights: str | None = None, width: float = 1.0) -> None:
        super().__init__()
        if stride not in (8, 16, 32):
            raise ConfigError(f"FCN stride must be 8, 16 or 32, got {stride}")
        if encoder_weights is not None and width != 1.0:
            raise ConfigError(f"pretrained VGG16 weights need width 1.0, got {width}")
        self.num_classes, self.stride = num_classes, stride
        self.stages = nn.ModuleList()
        channels = in_channels
        stages = vgg16_stages(width)
        for widths in stages:
            self.stages.append(vgg_stage(channels, widths, batch_norm=False))
            channels = widths[-1]
        fc = max(1, round(4096 * width))
        self.pool = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.fc6 = nn.Sequential(nn.Conv2d(channels, fc, 7, padding=3), nn.ReLU(inplace=True), nn.Dropout2d(dropout))
        self.fc7 = nn.Sequential(nn.Conv2d(fc, fc, 1), nn.ReLU(inplace=True), nn.Dropout2d(dropout))
        self.score = nn.Conv2d(fc, num_classes, 1)
        self.skips = nn.ModuleDict()
        self.ups = nn.ModuleDict()
        if stride <= 16:
            self.skips["pool4"] = nn.Conv2d(stages[3][-1], num_classes, 1)
            self.ups["to16"] = _upsampler(num_classes, 2)
        if stride == 8:
            self.skips["pool3"] = nn.Conv2d(stages[2][-1], num_classes, 1)
            self.ups["to8"] = _upsampler(num_classes, 2)
        for skip in self.skips.values():
            nn.init.zeros_(skip.weight)
            nn.init.zeros_(skip.bias)
        self.ups["final"] = _upsampler(num_classes, stride)
        if encoder_weights is not None:
            load_vgg16_weights(self.stages, encoder_weights, batch_norm=False, fc6=self.fc6[0], fc7=self.fc7[0])

    def _forward(self, x: torch.Tensor, aux: bool = False):
        pools = []
        for stage in self.stages:
            x = self.pool(stage(x))
            pools.append(x)  # strides 2, 4, 8 (pool3), 16 (pool4), 32 (pool5)
        score = self.score(self.fc7(self.fc6(x)))
        if self.stride <= 16:
            score = self.ups["to16"](score) + self.skips["pool4"](pools[3])
        if self.stride == 8:
            score = self.ups["to8"](score) + self.skips["pool3"](pools[2])
        return self.ups["final"](score)


def _register(stride: int) -> None:
    def build(*, num_classes: int, in_channels: int = 3, dropout: float = 0.5, encoder_weights: str | None = None,
              width: float = 1.0) -> FCN:
        return FCN(num_classes=num_classes, in_channels=in_channels, stride=stride, dropout=dropout,
                   encoder_weights=encoder_weights, width=width)

    build.__doc__ = f"FCN-{stride}s (see :class:`FCN`)."
    MODELS.add(f"fcn{stride}s", build, task="semantic", description=f"FCN-{stride}s, VGG16 trunk (Long et al. 2015)")


for _stride in (32, 16, 8):
    _register(_stride)
