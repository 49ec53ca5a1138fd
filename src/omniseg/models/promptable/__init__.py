"""Promptable segmentation: Segment Anything's image encoders (ViT, TinyViT), prompt encoder and mask decoder,
loading the official checkpoints unchanged."""

from omniseg.models.promptable.sam import OFFICIAL_SHA256, Sam, build_sam, load_sam_checkpoint

__all__ = ["OFFICIAL_SHA256", "Sam", "build_sam", "load_sam_checkpoint"]
