"""Split-and-merge: quadtree split, region adjacency graph, merged regions on hand-built arrays."""

import numpy as np

from omniseg.classical import split_and_merge
from omniseg.classical.regions import adjacent_pairs
from omniseg.classical.split_merge import quadtree_blocks

from .conftest import noisy_step, two_flat_regions


def test_quadtree_splits_only_inhomogeneous_blocks():
    values = np.zeros((8, 8))
    values[:4, :4] = 50  # one homogeneous quadrant differs: 4 leaves, no deeper split
    assert np.unique(quadtree_blocks(values, 10)).size == 4
    values[0, 0] = 200  # the top-left quadrant now splits down to single pixels around the outlier
    blocks = quadtree_blocks(values, 10)
    assert np.unique(blocks).size == 3 + 3 + 4  # 3 quadrants, then 3 quarter blocks + 4 pixels
    assert np.unique(quadtree_blocks(values, 10, min_size=4)).size == 4  # blocks of side 4 are not split


def test_adjacent_pairs_are_the_region_adjacency_graph():
    labels = np.array([[0, 0, 1], [2, 2, 1], [3, 3, 3]])
    assert adjacent_pairs(labels).tolist() == [[0, 1], [0, 2], [1, 2], [1, 3], [2, 3]]


def test_two_flat_regions_and_a_checkerboard_give_exact_regions():
    image, truth = two_flat_regions()
    assert np.array_equal(split_and_merge(image, 10), truth)
    board = (np.indices((4, 4)).sum(0) % 2).repeat(5, 0).repeat(5, 1) * 100.0
    regions = split_and_merge(board, 10)
    assert regions.max() + 1 == 16  # equal-valued squares touch only at corners: never merged (4-adjacency)
    assert all(np.unique(regions[5 * i : 5 * i + 5, 5 * j : 5 * j + 5]).size == 1 for i in range(4) for j in range(4))


def test_noisy_step_merges_into_its_two_sides_and_the_input_is_unchanged():
    noisy, truth = noisy_step(3.0)
    before = noisy.copy()
    regions = split_and_merge(noisy, 30)  # noise range about 6 sigma = 18 < 30 < the 120 step
    assert np.array_equal(regions, truth)
    assert np.array_equal(noisy, before)
    assert np.array_equal(split_and_merge(np.full((5, 7), 3.0), 0), np.zeros((5, 7), np.int64))
