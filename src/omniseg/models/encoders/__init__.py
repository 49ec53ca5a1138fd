"""Encoders: backbones returning multi-scale features with ``channels`` and ``strides``."""

from omniseg.models.encoders.plain import UNetEncoder
from omniseg.models.encoders.timm_encoder import TimmEncoder

__all__ = ["TimmEncoder", "UNetEncoder"]
