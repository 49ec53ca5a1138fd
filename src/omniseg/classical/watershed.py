"""Morphological watershed (Beucher & Meyer) on the gradient image, via scikit-image: markers from the
h-minima of the gradient (shallow minima filled, which controls over-segmentation) or from user seeds."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.filters import gaussian, sobel
from skimage.morphology import h_minima, local_minima
from skimage.segmentation import watershed

from omniseg.classical.regions import raster_order
from omniseg.classical.images import grey


def gradient_magnitude(image: np.ndarray, *, smoothing: float = 1.0) -> np.ndarray:
    """Sobel gradient magnitude of the (Gaussian-smoothed, ``smoothing`` = sigma in pixels) grey image,
    scaled to 0..1."""
    values = grey(image)
    values = gaussian(values, sigma=smoothing, preserve_range=True) if smoothing > 0 else values
    gradient = sobel(values)
    top = gradient.max()
    return gradient / top if top > 0 else gradient


def watershed_segmentation(image: np.ndarray, *, markers: np.ndarray | None = None, h: float = 0.05, smoothing: float = 1.0,
                           compactness: float = 0.0) -> np.ndarray:
    """Regions ``[H, W]`` int64 from flooding the gradient image, numbered 0.. in raster order (with user
    markers: in the order of the marker values).

    Args:
        markers: user seeds, ``[H, W]`` ints with 0 = unseeded (each distinct positive value one region);
            without them every h-minimum of the gradient seeds a region.
        h: depth (in units of the 0..1 gradient) below which minima are filled before seeding; larger
            means fewer, bigger regions (0: every local minimum seeds a region).
        smoothing: Gaussian sigma applied before the gradient (0: none).
        compactness: scikit-image's compact watershed (0: the classic one); larger gives rounder regions.
    """
    gradient = gradient_magnitude(image, smoothing=smoothing)
    if markers is None:
        if gradient.max() == 0:  # a flat image: one region
            minima = np.ones(gradient.shape, bool)
        else:
            minima = h_minima(gradient, h) if h > 0 else local_minima(gradient)
        seeds, _ = ndimage.label(minima)
    else:
        markers = np.asarray(markers)
        if markers.shape != gradient.shape:
            raise ValueError(f"markers are {markers.shape} but the image is {gradient.shape}; draw seeds on the image's grid")
        if not (markers > 0).any():
            raise ValueError("the markers hold no seed (every value is 0); mark at least one pixel with a positive label")
        _, seeds = np.unique(np.where(markers > 0, markers, 0), return_inverse=True)
        seeds = seeds.reshape(markers.shape)
    regions = watershed(gradient, seeds, compactness=compactness).astype(np.int64) - 1
    return raster_order(regions) if markers is None else regions
