"""Promptable segmentation: Segment Anything 1 and 2. SAM's image encoders (ViT, TinyViT, timm), SAM 2's Hiera encoder
and streaming memory, the prompt encoder and mask decoders, loading the official checkpoints unchanged."""

from omniseg.models.promptable.official_files import OFFICIAL_SHA256
from omniseg.models.promptable.sam import Sam, build_sam, load_sam_checkpoint
from omniseg.models.promptable.sam2 import Sam2, load_sam2_checkpoint, sam2_model

__all__ = ["OFFICIAL_SHA256", "Sam", "Sam2", "build_sam", "load_sam2_checkpoint", "load_sam_checkpoint", "sam2_model"]
