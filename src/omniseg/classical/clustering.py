"""Clustering pixels in colour (optionally colour + position) space, then making regions connected."""

from __future__ import annotations

import numpy as np
from scipy.cluster.vq import kmeans2
from skimage.measure import label as connected_components


def pixel_features(image: np.ndarray, *, spatial_weight: float = 0.0) -> np.ndarray:
    """``[H * W, C (+ 2)]`` float64 features: the channels in 0..1 for uint8 images (as given otherwise),
    and with ``spatial_weight > 0`` the row and column divided by the larger side, times that weight."""
    image = np.asarray(image)
    values = image.astype(np.float64) / (255.0 if image.dtype == np.uint8 else 1.0)
    values = values[..., None] if values.ndim == 2 else values
    height, width = values.shape[:2]
    features = values.reshape(height * width, -1)
    if spatial_weight > 0:
        rows, columns = np.mgrid[0:height, 0:width] / max(height, width)
        features = np.hstack([features, spatial_weight * np.stack([rows.ravel(), columns.ravel()], 1)])
    return features


def connected_regions(labels: np.ndarray, *, connectivity: int = 1) -> np.ndarray:
    """Each connected piece of each label as its own region, numbered 0.. in raster order of first pixel.

    Example:
        >>> connected_regions(np.array([[0, 1, 0], [0, 1, 0]])).tolist()
        [[0, 1, 2], [0, 1, 2]]
    """
    return connected_components(np.asarray(labels), background=-1, connectivity=connectivity).astype(np.int64) - 1


def kmeans_segmentation(image: np.ndarray, k: int, *, spatial_weight: float = 0.0, connect: bool = False, seed: int = 0,
                        iterations: int = 30) -> np.ndarray:
    """K-means (k-means++ start, scipy) on :func:`pixel_features`: labels ``[H, W]`` int64 ordered by the
    clusters' mean brightness (so results are comparable across seeds), or with ``connect`` the connected
    regions of those clusters (:func:`connected_regions`)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    image = np.asarray(image)
    features = pixel_features(image, spatial_weight=spatial_weight)
    distinct = np.unique(features, axis=0).shape[0]
    if distinct < k:
        raise ValueError(f"the image has {distinct} distinct pixel values, too few for k={k}; ask for at most {distinct}")
    centres, assignment = kmeans2(features, k, iter=iterations, minit="++", seed=np.random.default_rng(seed))
    channels = features.shape[1] - (2 if spatial_weight > 0 else 0)
    order = np.argsort(np.argsort(centres[:, :channels].mean(1), kind="stable"), kind="stable")  # rank by brightness
    labels = order[assignment].reshape(image.shape[:2]).astype(np.int64)
    return connected_regions(labels) if connect else labels
