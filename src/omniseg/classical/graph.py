"""Merging regions over their region adjacency graph (scikit-image): by a mean-colour threshold, or by
normalised cuts (Shi & Malik, 2000). Both start from superpixels, SLIC's unless regions are given."""

from __future__ import annotations

import numpy as np
from skimage.graph import cut_normalized, cut_threshold, rag_mean_color

from omniseg.classical.regions import raster_order
from omniseg.classical.images import image_and_channel_axis, unit_values
from omniseg.classical.superpixels import slic_superpixels


def _unit_colour(image: np.ndarray) -> np.ndarray:
    """``[H, W, C]`` float64 with uint8 scaled to 0..1 (so colour distances and thresholds are in 0..1 units)."""
    values, channel_axis = image_and_channel_axis(image)
    values = unit_values(values)
    return values[..., None] if channel_axis is None else values


def _start(image: np.ndarray, regions: np.ndarray | None, segments: int) -> np.ndarray:
    if regions is None:
        return slic_superpixels(image, segments)
    regions = np.asarray(regions)
    if regions.shape != np.asarray(image).shape[:2]:
        raise ValueError(f"regions are {regions.shape} but the image is {np.asarray(image).shape[:2]}; pass a label image of the same size")
    return raster_order(regions)


def merge_by_mean_colour(image: np.ndarray, threshold: float = 0.08, *, regions: np.ndarray | None = None,
                         segments: int = 300) -> np.ndarray:
    """Regions ``[H, W]`` int64: adjacent regions whose mean colours (0..1 units) differ by less than
    ``threshold`` are joined, and so on transitively (connected components of the graph's light edges)."""
    regions = _start(image, regions, segments)
    graph = rag_mean_color(_unit_colour(image), regions, mode="distance")
    return raster_order(cut_threshold(regions, graph, threshold, in_place=False))


def normalised_cut(image: np.ndarray, *, regions: np.ndarray | None = None, segments: int = 300, sigma: float = 0.1,
                   threshold: float = 0.001, cuts: int = 10, seed: int = 0) -> np.ndarray:
    """Regions ``[H, W]`` int64 from recursive two-way normalised cuts of the region adjacency graph, whose edge
    weights are ``exp(-d^2 / sigma^2)`` of the regions' mean-colour distance d (0..1 units). A subgraph is cut
    again while its best cut's normalised cost is below ``threshold`` (``cuts`` candidate cuts tried each
    time); ``seed`` fixes the eigensolver's start."""
    regions = _start(image, regions, segments)
    graph = rag_mean_color(_unit_colour(image), regions, mode="similarity", sigma=sigma**2)
    return raster_order(cut_normalized(regions, graph, thresh=threshold, num_cuts=cuts, in_place=False,
                                       rng=seed))
