"""Region bookkeeping shared by the classical methods: connected pieces, raster-order numbering and the
region adjacency graph."""

from __future__ import annotations

import numpy as np
from skimage.measure import label as connected_components


def connected_regions(labels: np.ndarray, *, connectivity: int = 1) -> np.ndarray:
    """Each connected piece of each label as its own region, numbered 0.. in raster order of first pixel.

    Example:
        >>> connected_regions(np.array([[0, 1, 0], [0, 1, 0]])).tolist()
        [[0, 1, 2], [0, 1, 2]]
    """
    return connected_components(np.asarray(labels), background=-1, connectivity=connectivity).astype(np.int64) - 1


def raster_order(labels: np.ndarray) -> np.ndarray:
    """The same regions renumbered 0.. in raster order of their first pixel (labels need not be connected).

    Example:
        >>> raster_order(np.array([[7, 7, 3], [9, 3, 3]])).tolist()
        [[0, 0, 1], [2, 1, 1]]
    """
    labels = np.asarray(labels)
    values, first, inverse = np.unique(labels.ravel(), return_index=True, return_inverse=True)
    rank = np.empty(len(values), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(values))
    return rank[inverse].reshape(labels.shape)


def adjacent_pairs(labels: np.ndarray) -> np.ndarray:
    """``[E, 2]`` the distinct pairs ``(a < b)`` of labels that touch (4-neighbours): the region adjacency graph."""
    pairs = np.concatenate([np.stack([labels[:, :-1].ravel(), labels[:, 1:].ravel()], 1),
                            np.stack([labels[:-1].ravel(), labels[1:].ravel()], 1)])
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return np.unique(np.sort(pairs, axis=1), axis=0)
