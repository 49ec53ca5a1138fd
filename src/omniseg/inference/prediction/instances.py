"""Semantic masks to instances, for blob-like classes (nuclei, cells, grains): a semantic model can then
answer instance questions.

Each connected region of a class is an instance; optionally, touching objects are split by a
watershed on the distance transform, seeded at its peaks (the classic nuclei recipe).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from skimage.feature import peak_local_max
from skimage.segmentation import watershed


def split_touching(region: np.ndarray, min_distance: int = 5) -> np.ndarray:
    """Label ``region`` (bool [H, W]) into objects: watershed of the negated distance transform, one
    seed per distance peak at least ``min_distance`` pixels from the others. Returns int32 labels (0 = outside)."""
    distance = ndimage.distance_transform_edt(region)
    components, count = ndimage.label(region)
    peaks = peak_local_max(distance, min_distance=max(1, min_distance), labels=components, exclude_border=False)
    markers = np.zeros(region.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    unseeded = set(range(1, count + 1)) - set(np.unique(components[markers > 0]).tolist())
    for number, component in enumerate(sorted(unseeded), len(peaks) + 1):  # flat regions without a peak keep one seed
        markers[np.argwhere(components == component)[0][0], np.argwhere(components == component)[0][1]] = number
    return watershed(-distance, markers, mask=region).astype(np.int32)


def semantic_to_instances(semantic: np.ndarray, classes: Sequence[int], *, min_area: int = 1, split: bool = False,
                          min_distance: int = 5, connectivity: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Instances of ``classes`` in a semantic mask: ``(masks [N, H, W] bool, labels [N])``.

    Args:
        classes: the class ids to turn into instances (the others are ignored).
        min_area: smaller pieces are dropped.
        split: split touching objects by a distance-transform watershed.
        min_distance: the smallest distance between two objects' centres when splitting.
        connectivity: 1 (4-neighbours) or 2 (8-neighbours) for connected components.

    Example:
        >>> mask = np.zeros((5, 7), int); mask[1:3, 1:3] = 1; mask[1:4, 4:6] = 1
        >>> masks, labels = semantic_to_instances(mask, [1])
        >>> [int(m.sum()) for m in masks], labels.tolist()
        ([4, 6], [1, 1])
    """
    semantic = np.asarray(semantic)
    masks, labels = [], []
    structure = ndimage.generate_binary_structure(2, connectivity)
    for cls in classes:
        region = semantic == cls
        if not region.any():
            continue
        objects = split_touching(region, min_distance) if split else ndimage.label(region, structure)[0]
        for number in range(1, int(objects.max()) + 1):
            mask = objects == number
            if mask.sum() >= min_area:
                masks.append(mask)
                labels.append(int(cls))
    stacked = np.stack(masks) if masks else np.zeros((0, *semantic.shape), bool)
    return stacked, np.asarray(labels, np.int64)
