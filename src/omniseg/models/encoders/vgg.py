"""VGG16 stages (Simonyan & Zisserman, 2015), the trunk of FCN and SegNet."""

from __future__ import annotations

from torch import nn

VGG16_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


def vgg_stage(in_channels: int, widths: tuple[int, ...], batch_norm: bool) -> nn.Sequential:
    """3x3 convolutions (+ BatchNorm for VGG16-BN) and ReLUs of one VGG stage, without its pooling."""
    layers: list[nn.Module] = []
    for width in widths:
        layers.append(nn.Conv2d(in_channels, width, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(width))
        layers.append(nn.ReLU(inplace=True))
        in_channels = width
    return nn.Sequential(*layers)
