"""Building blocks: conv blocks, upsampling, pluggable norm and activation layers."""

from omniseg.models.layers.conv import ConvNormAct, DoubleConv
from omniseg.models.layers.factory import get_act_layer, get_norm_layer
from omniseg.models.layers.upsample import (
    UPSAMPLING_MODES,
    BedOfNails,
    Interpolate,
    MaxUnpool,
    PixelShuffleUpsample,
    bilinear_kernel,
    make_upsample,
)

__all__ = [
    "BedOfNails",
    "ConvNormAct",
    "DoubleConv",
    "Interpolate",
    "MaxUnpool",
    "PixelShuffleUpsample",
    "UPSAMPLING_MODES",
    "bilinear_kernel",
    "get_act_layer",
    "get_norm_layer",
    "make_upsample",
]
