"""Volumetric segmentation, ``[N, C, D, H, W] -> [N, K, D, H, W]``; importing registers the models."""

from omniseg.models.volumetric.unet3d import UNet3D
from omniseg.models.volumetric.vnet import VNet

__all__ = ["UNet3D", "VNet"]
