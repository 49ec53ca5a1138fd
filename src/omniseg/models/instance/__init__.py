"""Instance segmentation models (torchvision detection conventions); importing registers them."""

from omniseg.models.instance.mask_rcnn import TimmFPNBackbone, load_detection_weights, mask_rcnn

__all__ = ["TimmFPNBackbone", "load_detection_weights", "mask_rcnn"]
