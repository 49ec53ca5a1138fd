"""Panoptic segmentation: Panoptic FPN and the merge of instance and semantic predictions; importing registers the model."""

from omniseg.models.panoptic.merge import ids_to_rgb, merge_prediction, panoptic_merge
from omniseg.models.panoptic.panoptic_fpn import PanopticFPN, SemanticFPNHead, panoptic_fpn

__all__ = ["PanopticFPN", "SemanticFPNHead", "ids_to_rgb", "merge_prediction", "panoptic_fpn", "panoptic_merge"]
