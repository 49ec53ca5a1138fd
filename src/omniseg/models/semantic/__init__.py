"""Semantic segmentation architectures, one module each; importing registers them."""

from omniseg.models.semantic.base import SegmentationModel
from omniseg.models.semantic.deeplab import DeepLab
from omniseg.models.semantic.fcn import FCN
from omniseg.models.semantic.fpn import FPN
from omniseg.models.semantic.pspnet import PSPNet
from omniseg.models.semantic.segformer import SegFormer
from omniseg.models.semantic.segnet import SegNet
from omniseg.models.semantic.setr import SETR
from omniseg.models.semantic.tiramisu import FCDenseNet
from omniseg.models.semantic.unet import UNet
from omniseg.models.semantic.unetplusplus import UNetPlusPlus

__all__ = ["FCDenseNet", "FCN", "FPN", "DeepLab", "PSPNet", "SETR", "SegFormer", "SegNet", "SegmentationModel", "UNet", "UNetPlusPlus"]
