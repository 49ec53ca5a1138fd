"""SegNet (Badrinarayanan, Kendall & Cipolla, 2017): decoders upsample with the encoder's pooling indices."""

from __future__ import annotations

import torch
from torch import nn

from omniseg.models.builder import MODELS
from omniseg.models.encoders.vgg import load_vgg16_weights, vgg16_stages, vgg_stage
from omniseg.models.layers import MaxUnpool
from omniseg.models.semantic.base import SegmentationModel
from omniseg.errors import ConfigError


class SegNet(SegmentationModel):
    """Encoder-decoder without skip concatenation: each decoder stage max-unpools with the indices its
    encoder stage stored, then convolves. No fully connected layers.

    ``variant="vgg16"``: the 13-layer VGG16-BN encoder and its mirror decoder (29.5M parameters at 11 classes).
    ``variant="basic"``: SegNet-Basic, 4 stages of 64-channel 7x7 conv + BN (no biases, and no ReLU in the
    decoder, as the paper describes). ``width`` scales every channel count (1.0: the paper's).
    ``encoder_weights``: ``None``, ``"imagenet"`` (torchvision's VGG16-BN, downloaded when online) or a
    file with the state dict of ``torchvision.models.vgg16_bn()`` or ``vgg16()`` for the encoder, as the
    paper initialised it (see :func:`load_vgg16_weights`).

    Example:
        >>> SegNet(num_classes=11, variant="basic")(torch.randn(1, 3, 45, 60)).shape
        torch.Size([1, 11, 45, 60])
    """

    def __init__(self, *, num_classes: int, in_channels: int = 3, variant: str = "vgg16",
                 encoder_weights: str | None = None, width: float = 1.0) -> None:
        super().__init__()
        if encoder_weights is not None and width != 1.0:
            raise ConfigError(f"pretrained VGG16-BN weights need width 1.0, got {width}")
        stages = vgg16_stages(width)
        self.num_classes = num_classes
        self.pool = nn.MaxPool2d(2, 2, return_indices=True)
        self.unpool = MaxUnpool(2)
        self.encoder, self.decoder = nn.ModuleList(), nn.ModuleList()
        if variant == "vgg16":
            channels = in_channels
            for widths in stages:
                self.encoder.append(vgg_stage(channels, widths, batch_norm=True))
                channels = widths[-1]
            # mirror: decoder stage i maps the encoder's output width back to its input width
            inputs = [in_channels] + [w[-1] for w in stages[:-1]]
            for number, (widths, out) in enumerate(zip(stages[::-1], inputs[::-1])):
                dec_widths = tuple(widths[:-1]) + (widths[0] if number == len(stages) - 1 else out,)
                self.decoder.append(vgg_stage(widths[-1], dec_widths, batch_norm=True))
            self.classifier = nn.Conv2d(stages[0][0], num_classes, 3, padding=1)
        elif variant == "basic":
            channels, width_64 = in_channels, max(1, round(64 * width))
            for _ in range(4):
                self.encoder.append(nn.Sequential(nn.Conv2d(channels, width_64, 7, padding=3, bias=False),
                                                  nn.BatchNorm2d(width_64), nn.ReLU(inplace=True)))
                channels = width_64
            for _ in range(4):
                self.decoder.append(nn.Sequential(nn.Conv2d(width_64, width_64, 7, padding=3, bias=False), nn.BatchNorm2d(width_64)))
            self.classifier = nn.Conv2d(width_64, num_classes, 1)
        else:
            raise ConfigError(f"SegNet variant must be 'vgg16' or 'basic', got {variant!r}")
        self.size_divisor = 2 ** len(self.encoder)
        if encoder_weights is not None:
            if variant != "vgg16":
                raise ConfigError("encoder_weights needs variant 'vgg16'; SegNet-Basic has no pretrained encoder")
            load_vgg16_weights(self.encoder, encoder_weights, batch_norm=True)

    def _forward(self, x: torch.Tensor, aux: bool = False):
        indices, sizes = [], []
        for stage in self.encoder:
            x = stage(x)
            sizes.append(x.shape)
            x, index = self.pool(x)
            indices.append(index)
        for stage, index, size in zip(self.decoder, indices[::-1], sizes[::-1]):
            x = stage(self.unpool(x, index, size))
        return self.classifier(x)


@MODELS.register("segnet", task="semantic", description="SegNet, VGG16-BN encoder, max-unpooling decoder")
def segnet(*, num_classes: int, in_channels: int = 3, encoder_weights: str | None = None, width: float = 1.0) -> SegNet:
    """SegNet with the VGG16-BN encoder (see :class:`SegNet`)."""
    return SegNet(num_classes=num_classes, in_channels=in_channels, variant="vgg16", encoder_weights=encoder_weights, width=width)


@MODELS.register("segnet_basic", task="semantic", description="SegNet-Basic: 4 x (7x7 conv 64, BN), max-unpooling")
def segnet_basic(*, num_classes: int, in_channels: int = 3, width: float = 1.0) -> SegNet:
    """SegNet-Basic (see :class:`SegNet`)."""
    return SegNet(num_classes=num_classes, in_channels=in_channels, variant="basic", width=width)
