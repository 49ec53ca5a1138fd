"""Superpixels: SLIC and its parameter-free SLIC0 (Achanta et al., 2012) and the graph-based method of
Felzenszwalb & Huttenlocher (2004), via scikit-image; regions numbered 0.. in raster order."""

from __future__ import annotations

import numpy as np
from skimage.segmentation import felzenszwalb, slic

from omniseg.classical.images import image_and_channel_axis, unit_values
from omniseg.classical.regions import raster_order


def slic_superpixels(image: np.ndarray, segments: int = 200, *, compactness: float = 10.0, zero: bool = False,
                     smoothing: float = 1.0, iterations: int = 10, enforce_connectivity: bool = True) -> np.ndarray:
    """SLIC superpixels ``[H, W]`` int64: k-means in CIELAB colour + position from a grid of about ``segments``
    centres. ``compactness`` trades colour for position (larger: squarer); ``zero`` is SLIC0, which adapts
    the compactness to each superpixel's own colour spread (then ``compactness`` only sets the start).
    ``smoothing`` is a Gaussian sigma applied first. Grey images cluster their intensity (0..1 for uint8),
    so their useful ``compactness`` is about 100x smaller than colour's."""
    if segments < 1:
        raise ValueError(f"segments must be at least 1, got {segments}")
    values, channel_axis = image_and_channel_axis(image)
    labels = slic(unit_values(values), n_segments=segments, compactness=compactness, slic_zero=zero, sigma=smoothing, max_num_iter=iterations,
                  enforce_connectivity=enforce_connectivity, start_label=0, channel_axis=channel_axis)
    return raster_order(labels)


def felzenszwalb_segmentation(image: np.ndarray, scale: float = 100.0, *, smoothing: float = 0.8, min_size: int = 20) -> np.ndarray:
    """Felzenszwalb-Huttenlocher regions ``[H, W]`` int64: Kruskal's merging of the 8-neighbour pixel graph,
    joining two regions while the edge between them is no heavier than either's internal difference plus
    ``scale / size``; larger ``scale`` gives larger regions. Regions under ``min_size`` pixels are then joined
    to a neighbour; ``smoothing`` is the Gaussian sigma applied first. ``scale`` is the paper's k, for colour
    distances in 0..255 units (uint8 images; float images are taken as 0..1)."""
    values, channel_axis = image_and_channel_axis(image)
    return raster_order(felzenszwalb(unit_values(values), scale=scale, sigma=smoothing, min_size=min_size, channel_axis=channel_axis))
