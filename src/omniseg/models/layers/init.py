"""Weight initialisation for layers omniseg builds (timm backbones keep their own)."""

from __future__ import annotations

from torch import nn


def init_weights(module: nn.Module) -> None:
    """He (Kaiming) uniform init for convolutions that feed a ReLU directly, PyTorch's default for those that
    feed a norm layer, unit norms, zero biases.

    A convolution whose output is normalised (omniseg's have no bias then) computes the same function at
    any weight scale, and an optimiser's step moves it by step / scale: He's larger weights would divide its
    early learning rate by about six. Where no norm layer follows (U-Net's transposed up-convolutions, heads),
    PyTorch's default is about 1.7x too small for ReLU networks and shrinks the deep path against the skip
    connections, so those get He's init.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Conv3d, nn.ConvTranspose3d)):
            if m.bias is None:  # a norm layer follows
                m.reset_parameters()
                continue
            nn.init.kaiming_uniform_(m.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.InstanceNorm2d, nn.InstanceNorm3d)) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
