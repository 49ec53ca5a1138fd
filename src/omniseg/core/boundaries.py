"""Label boundaries: where a labelling changes from one pixel to the next (metrics, readers and overlays use them)."""

from __future__ import annotations

import numpy as np


def label_boundaries(labels: np.ndarray) -> np.ndarray:
    """``[H, W]`` bool: pixels whose right or lower neighbour has another label (one pixel wide, on one side).

    Example:
        >>> label_boundaries(np.array([[0, 0, 1], [0, 0, 1]])).astype(int).tolist()
        [[0, 1, 0], [0, 1, 0]]
    """
    labels = np.asarray(labels)
    edges = np.zeros(labels.shape, bool)
    edges[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edges[:-1, :] |= labels[:-1, :] != labels[1:, :]
    return edges
