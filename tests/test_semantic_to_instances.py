"""Semantic masks to instances: connected components, and watershed splitting of touching objects."""

import numpy as np

from omniseg.inference.prediction.instances import semantic_to_instances


def _touching_discs():
    yy, xx = np.mgrid[:40, :60]
    mask = np.zeros((40, 60), int)
    mask[(yy - 20) ** 2 + (xx - 20) ** 2 < 100] = 1
    mask[(yy - 20) ** 2 + (xx - 37) ** 2 < 100] = 1  # overlaps the first: one connected blob
    mask[2:5, 50:55] = 1
    mask[30:36, 50:56] = 2
    return mask


def test_components_and_watershed_split():
    mask = _touching_discs()
    masks, labels = semantic_to_instances(mask, [1, 2])
    assert labels.tolist() == [1, 1, 2] and [int(m.sum()) for m in masks] == [15, 592, 36]
    masks, labels = semantic_to_instances(mask, [1], split=True)
    assert labels.tolist() == [1, 1, 1] and sorted(int(m.sum()) for m in masks) == [15, 296, 296]
    assert not (masks[1] & masks[2]).any() and np.array_equal(masks.any(0), mask == 1)  # a partition of the class
    masks, _ = semantic_to_instances(mask, [1], split=True, min_area=20)
    assert len(masks) == 2


def test_connectivity_and_empty_classes():
    diagonal = np.eye(4, dtype=int)
    assert len(semantic_to_instances(diagonal, [1])[0]) == 4
    assert len(semantic_to_instances(diagonal, [1], connectivity=2)[0]) == 1
    masks, labels = semantic_to_instances(np.zeros((3, 3), int), [1])
    assert masks.shape == (0, 3, 3) and labels.tolist() == []
