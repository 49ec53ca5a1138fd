"""Semantic segmentation architectures, one module each; importing registers them."""

from omniseg.models.semantic.base import SegmentationModel
from omniseg.models.semantic.unet import UNet

__all__ = ["SegmentationModel", "UNet"]
