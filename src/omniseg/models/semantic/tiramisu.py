"""FC-DenseNet, "The One Hundred Layers Tiramisu" (Jegou et al., 2017)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from omniseg.models.builder import MODELS
from omniseg.models.semantic.base import SegmentationModel


class DenseLayer(nn.Sequential):
    """BN -> ReLU -> 3x3 conv producing ``growth_rate`` maps -> dropout."""

    def __init__(self, in_channels: int, growth_rate: int, dropout: float) -> None:
        super().__init__(nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True),
                         nn.Conv2d(in_channels, growth_rate, 3, padding=1), nn.Dropout2d(dropout))


class DenseBlock(nn.Module):
    """``n_layers`` DenseLayers, each seeing the concatenation of the input and all earlier outputs.

    Returns the concatenation ``[input, new]`` when ``keep_input``, else only the ``n_layers * k`` new
    maps (the upsampling path passes only those on, to keep the widths in check).
    """

    def __init__(self, in_channels: int, n_layers: int, growth_rate: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DenseLayer(in_channels + i * growth_rate, growth_rate, dropout) for i in range(n_layers)
        )

    def forward(self, x: torch.Tensor, keep_input: bool = True) -> torch.Tensor:
        new = []
        for layer in self.layers:
            out = layer(x)
            new.append(out)
            x = torch.cat([x, out], dim=1)
        return x if keep_input else torch.cat(new, dim=1)


class TransitionDown(nn.Sequential):
    """BN -> ReLU -> 1x1 conv (same width) -> dropout -> 2x2 max pooling."""

    def __init__(self, channels: int, dropout: float) -> None:
        super().__init__(nn.BatchNorm2d(channels), nn.ReLU(inplace=True), nn.Conv2d(channels, channels, 1),
                         nn.Dropout2d(dropout), nn.MaxPool2d(2))


class FCDenseNet(SegmentationModel):
    """FC-DenseNet: a first 3x3 conv, dense blocks with transitions down, a bottleneck block, and an
    upsampling path of 3x3 stride-2 transposed convolutions that upsample only the new maps of the block
    below, concatenated with the skip of the same resolution.

    Args:
        num_classes: K.
        in_channels: input channels.
        down_layers: layers of each down block (the up path mirrors them).
        bottleneck_layers: layers of the bottleneck block.
        growth_rate: k, maps added by each layer.
        first_channels: maps of the first convolution (48).
        dropout: after every convolution (0.2).

    Example:
        >>> FCDenseNet(num_classes=11, down_layers=(2, 2), bottleneck_layers=2)(torch.randn(1, 3, 30, 45)).shape
        torch.Size([1, 11, 30, 45])
    """

    def __init__(
        self, *, num_classes: int, in_channels: int = 3, down_layers: Sequence[int] = (4, 5, 7, 10, 12),
        bottleneck_layers: int = 15, growth_rate: int = 16, first_channels: int = 48, dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.first = nn.Conv2d(in_channels, first_channels, 3, padding=1)
        self.down_blocks, self.transitions_down, skip_channels = nn.ModuleList(), nn.ModuleList(), []
        channels = first_channels
        for n in down_layers:
            self.down_blocks.append(DenseBlock(channels, n, growth_rate, dropout))
            channels += n * growth_rate
            skip_channels.append(channels)
            self.transitions_down.append(TransitionDown(channels, dropout))
        self.bottleneck = DenseBlock(channels, bottleneck_layers, growth_rate, dropout)
        upsampled = bottleneck_layers * growth_rate  # only the new maps are upsampled
        self.transitions_up, self.up_blocks = nn.ModuleList(), nn.ModuleList()
        for n, skip in zip(list(down_layers)[::-1], skip_channels[::-1]):
            self.transitions_up.append(nn.ConvTranspose2d(upsampled, upsampled, 3, stride=2, padding=1, output_padding=1))
            self.up_blocks.append(DenseBlock(upsampled + skip, n, growth_rate, dropout))
            channels = upsampled + skip + n * growth_rate
            upsampled = n * growth_rate
        self.head = nn.Conv2d(channels, num_classes, 1)
        self.size_divisor = 2 ** len(down_layers)

    def _forward(self, x: torch.Tensor, aux: bool = False):
        x = self.first(x)
        skips = []
        for block, down in zip(self.down_blocks, self.transitions_down):
            x = block(x)
            skips.append(x)
            x = down(x)
        x = self.bottleneck(x, keep_input=False)
        last = len(self.up_blocks) - 1
        for i, (up, block, skip) in enumerate(zip(self.transitions_up, self.up_blocks, skips[::-1])):
            x = torch.cat([up(x), skip], dim=1)
            x = block(x, keep_input=i == last)  # the last block passes everything to the classifier
        return self.head(x)


# (down layers per block, bottleneck layers, growth rate), Table 2 of the paper
TIRAMISU_CONFIGS = {56: ((4,) * 5, 4, 12), 67: ((5,) * 5, 5, 16), 103: ((4, 5, 7, 10, 12), 15, 16)}


def _register(layers: int) -> None:
    down, bottleneck, growth = TIRAMISU_CONFIGS[layers]

    def build(*, num_classes: int, in_channels: int = 3, dropout: float = 0.2, growth_rate: int = growth,
              first_channels: int = 48) -> FCDenseNet:
        return FCDenseNet(num_classes=num_classes, in_channels=in_channels, down_layers=down,
                          bottleneck_layers=bottleneck, growth_rate=growth_rate, first_channels=first_channels, dropout=dropout)

    build.__doc__ = f"FC-DenseNet{layers} (see :class:`FCDenseNet`)."
    MODELS.add(f"fcdensenet{layers}", build, task="semantic",
               description=f"FC-DenseNet{layers} 'Tiramisu' (Jegou et al. 2017)")


for _layers in TIRAMISU_CONFIGS:
    _register(_layers)
