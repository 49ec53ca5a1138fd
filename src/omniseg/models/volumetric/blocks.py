"""3D convolution blocks shared by the volumetric models."""

from __future__ import annotations

from functools import partial

from torch import nn

from omniseg.registry import Registry
from omniseg.errors import ConfigError

NORM_LAYERS_3D: Registry = Registry("3D norm layer")
NORM_LAYERS_3D.add("batch", nn.BatchNorm3d)
NORM_LAYERS_3D.add("instance", partial(nn.InstanceNorm3d, affine=True))
NORM_LAYERS_3D.add("group", lambda channels: nn.GroupNorm(min(8, channels), channels))
NORM_LAYERS_3D.add("none", lambda channels: nn.Identity())


class ConvNormAct3d(nn.Sequential):
    """Conv3d -> norm -> activation (``"relu"`` or ``"prelu"``, one slope per channel as in V-Net)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, *, stride: int = 1,
                 padding: int | None = None, norm: str = "batch", act: str | None = "relu") -> None:
        padding = (kernel_size - 1) // 2 if padding is None else padding
        layers = [nn.Conv3d(in_channels, out_channels, kernel_size, stride, padding, bias=norm == "none"),
                  NORM_LAYERS_3D.get(norm)(out_channels)]
        if act is not None:
            layers.append(make_act3d(act, out_channels))
        super().__init__(*layers)


def make_act3d(act: str, channels: int) -> nn.Module:
    if act == "relu":
        return nn.ReLU(inplace=True)
    if act == "prelu":
        return nn.PReLU(channels)
    raise ConfigError(f"act must be 'relu' or 'prelu', got {act!r}")

