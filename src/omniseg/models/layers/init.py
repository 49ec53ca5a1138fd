"""Weight initialisation for layers omniseg builds (timm backbones keep their own)."""

from __future__ import annotations

from torch import nn


def init_weights(module: nn.Module) -> None:
    """He (Kaiming) uniform init for convolutions feeding ReLUs, unit norms, zero biases.

    PyTorch's default conv init is about 1.7x too small for ReLU networks; where no norm layer follows
    (U-Net's transposed up-convolutions), that shrinks the deep path against the skip connections
    and slows early training several-fold.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Conv3d, nn.ConvTranspose3d)):
            nn.init.kaiming_uniform_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.InstanceNorm2d, nn.InstanceNorm3d)) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
