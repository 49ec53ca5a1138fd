"""Split-and-merge (Horowitz & Pavlidis, 1974): split the image as a quadtree until every block is
homogeneous, then merge adjacent regions over the region adjacency graph while their union stays
homogeneous. Homogeneous: the grey range (max - min) is at most ``threshold``."""

from __future__ import annotations

import numpy as np

from omniseg.classical.regions import adjacent_pairs, raster_order
from omniseg.classical.images import grey


def quadtree_blocks(values: np.ndarray, threshold: float, min_size: int = 1) -> np.ndarray:
    """Labels ``[H, W]`` of the quadtree split: a block whose range exceeds ``threshold`` is cut into four
    (halves rounded down first) until it is homogeneous or a side reaches ``min_size``."""
    labels = np.zeros(values.shape, np.int64)
    stack = [(0, 0, values.shape[0], values.shape[1])]
    count = 0
    while stack:
        top, left, height, width = stack.pop()
        block = values[top : top + height, left : left + width]
        if block.max() - block.min() <= threshold or (height <= min_size and width <= min_size):
            labels[top : top + height, left : left + width] = count
            count += 1
            continue
        half_h, half_w = (height // 2 if height > min_size else height), (width // 2 if width > min_size else width)
        for t, h in ((top, half_h), (top + half_h, height - half_h)):
            for l, w in ((left, half_w), (left + half_w, width - half_w)):
                if h > 0 and w > 0:
                    stack.append((t, l, h, w))
    return labels


def split_and_merge(image: np.ndarray, threshold: float = 20.0, *, min_size: int = 1) -> np.ndarray:
    """Regions ``[H, W]`` int64 numbered 0.. in raster order of their first pixel.

    Example:
        >>> image = np.zeros((4, 6)); image[:, 3:] = 100
        >>> split_and_merge(image, 10).tolist()
        [[0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1]]
    """
    values = grey(image)
    blocks = quadtree_blocks(values, threshold, min_size)
    count = int(blocks.max()) + 1
    low = np.full(count, np.inf)
    high = np.full(count, -np.inf)
    np.minimum.at(low, blocks.ravel(), values.ravel())
    np.maximum.at(high, blocks.ravel(), values.ravel())
    parent = np.arange(count)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    edges = adjacent_pairs(blocks)
    merged = True
    while merged:  # passes over the graph, most similar pairs first, until no union stays homogeneous
        merged = False
        roots = np.array([root(i) for i in range(count)])
        edges = roots[edges]
        edges = edges[edges[:, 0] != edges[:, 1]]
        middle = (low + high) / 2
        for i, j in edges[np.argsort(np.abs(middle[edges[:, 0]] - middle[edges[:, 1]]), kind="stable")]:
            i, j = root(i), root(j)
            if i == j:
                continue
            lo, hi = min(low[i], low[j]), max(high[i], high[j])
            if hi - lo <= threshold:
                parent[j] = i
                low[i], high[i] = lo, hi
                merged = True
    roots = np.array([root(i) for i in range(count)])
    return raster_order(roots[blocks])
