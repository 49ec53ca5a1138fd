"""3D U-Net (Çiçek et al., MICCAI 2016): U-Net with 3x3x3 convolutions, BN, 2x2x2 pooling."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from omniseg.models.builder import MODELS
from omniseg.models.layers.init import init_weights
from omniseg.models.semantic.base import SegmentationModel, overlap_tile, valid_output_size
from omniseg.models.volumetric.blocks import ConvNormAct3d
from omniseg.errors import ConfigError


def _crop_to(skip: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Centre crop of ``skip`` to the spatial size of ``like`` (copy-and-crop of valid convolutions)."""
    starts = [(s - t) // 2 for s, t in zip(skip.shape[2:], like.shape[2:])]
    return skip[(..., *(slice(a, a + t) for a, t in zip(starts, like.shape[2:])))]


@MODELS.register("unet3d", task="semantic", volumetric=True,
                 description="3D U-Net for volumes (Çiçek et al. 2016)")
class UNet3D(SegmentationModel):
    """3D U-Net.

    Each analysis level has two 3x3x3 conv + BN + ReLU, the second doubling the channels (32 -> 64 at
    the top, as in the paper, so no level is a bottleneck before pooling); each synthesis level a 2x2x2
    up-convolution, concatenation with the skip and two 3x3x3 convolutions; a final 1x1x1 classifier.

    Args:
        num_classes: K; in_channels: C.
        base_channels: 32 in the paper; depth: poolings (3 in the paper).
        norm: ``"batch"`` (paper), ``"instance"``, ``"group"`` or ``"none"``.
        padding: ``"same"`` (output at the input size), or ``"valid"``, the paper's unpadded network:
            ``valid_forward`` maps a 132x132x116 tile to 44x44x28, and ``forward`` mirrors the borders
            so the output covers any input.

    Shape: ``[N, C, D, H, W] -> [N, K, D, H, W]``.

    Example:
        >>> model = UNet3D(num_classes=2, in_channels=1, base_channels=4, depth=2)
        >>> model(torch.randn(1, 1, 9, 14, 11)).shape
        torch.Size([1, 2, 9, 14, 11])
    """

    spatial_dims = 3

    def __init__(self, *, num_classes: int, in_channels: int = 1, base_channels: int = 32, depth: int = 3,
                 norm: str = "batch", padding: str = "same") -> None:
        super().__init__()
        if padding not in ("same", "valid"):
            raise ConfigError(f"padding must be 'same' or 'valid', got {padding!r}")
        self.num_classes, self.valid, self.depth = num_classes, padding == "valid", depth
        pad = 0 if self.valid else 1
        self.down = nn.ModuleList()
        channels, skip_channels = in_channels, []
        for level in range(depth + 1):
            width = base_channels * 2**level
            self.down.append(nn.Sequential(ConvNormAct3d(channels, width, padding=pad, norm=norm),
                                           ConvNormAct3d(width, 2 * width, padding=pad, norm=norm)))
            channels = 2 * width
            skip_channels.append(channels)
        self.ups, self.up_blocks = nn.ModuleList(), nn.ModuleList()
        for skip in reversed(skip_channels[:-1]):
            self.ups.append(nn.ConvTranspose3d(channels, channels, 2, stride=2))
            self.up_blocks.append(nn.Sequential(ConvNormAct3d(channels + skip, skip, padding=pad, norm=norm),
                                                ConvNormAct3d(skip, skip, padding=pad, norm=norm)))
            channels = skip
        self.head = nn.Conv3d(channels, num_classes, 1)
        self.size_divisor = 2**depth
        init_weights(self)

    def valid_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The network as is; with ``padding="valid"`` the output is smaller than the input."""
        skips = []
        for i, block in enumerate(self.down):
            x = block(x)
            if i < self.depth:
                skips.append(x)
                x = F.max_pool3d(x, 2)
        for up, block, skip in zip(self.ups, self.up_blocks, reversed(skips)):
            x = up(x)
            x = block(torch.cat([x, _crop_to(skip, x) if self.valid else skip], dim=1))
        return self.head(x)

    def valid_output_size(self, size: int) -> int | None:
        """Output side of the unpadded network for input side ``size`` (132 -> 44, 116 -> 28), or None."""
        return valid_output_size(size, self.depth)

    def forward(self, x: torch.Tensor, aux: bool = False):
        if not self.valid:
            return super().forward(x, aux=aux)
        self._check_aux(aux)
        return overlap_tile(self.valid_forward, x, self.depth)

    def _forward(self, x: torch.Tensor, aux: bool = False):
        return self.valid_forward(x)
