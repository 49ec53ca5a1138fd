"""Panoptic segmentation: the merge of instance and semantic predictions."""

from omniseg.models.panoptic.merge import ids_to_rgb, panoptic_merge

__all__ = ["ids_to_rgb", "panoptic_merge"]
