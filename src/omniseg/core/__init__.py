"""Primitives that several rooms share (DatasetInfo and palettes, RLE, label boundaries, normalisation
statistics, class balancing). ``core`` imports nothing else of omniseg but ``errors``, so every room may use it."""

from omniseg.core.boundaries import label_boundaries
from omniseg.core.class_balance import median_frequency_weights
from omniseg.core.info import DatasetInfo, default_palette
from omniseg.core.normalisation import IMAGENET_MEAN, IMAGENET_STD
from omniseg.core.rle import encode_rle

__all__ = [
    "DatasetInfo", "IMAGENET_MEAN", "IMAGENET_STD", "default_palette", "encode_rle",
    "label_boundaries", "median_frequency_weights",
]
