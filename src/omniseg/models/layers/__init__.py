"""Building blocks: conv blocks, upsampling, pluggable norm and activation layers."""

from omniseg.models.layers.conv import ConvNormAct, DoubleConv
from omniseg.models.layers.factory import get_act_layer, get_norm_layer
from omniseg.models.layers.upsample import UPSAMPLING_MODES, Interpolate, make_upsample

__all__ = ["ConvNormAct", "DoubleConv", "Interpolate", "UPSAMPLING_MODES", "get_act_layer", "get_norm_layer", "make_upsample"]
