"""SLIC, SLIC0, Felzenszwalb-Huttenlocher and region adjacency graph merging (mean colour, normalised cut) on
hand-built arrays: exact labels, inputs left unmodified."""

import numpy as np
import pytest

from omniseg.classical import (connected_regions, felzenszwalb_segmentation, merge_by_mean_colour, normalised_cut, raster_order,
                               slic_superpixels)

from .conftest import noisy_step, two_flat_regions

BOARD = np.kron(np.indices((3, 4)).sum(0) % 2, np.ones((4, 4), int)).astype(np.uint8) * 200  # 4x4-pixel squares
SQUARES = np.kron(np.arange(12).reshape(3, 4), np.ones((4, 4), int))  # each square its own region
STRIPS = np.arange(30)[:, None] // 5 * 40 + np.arange(40)[None, :]  # 5x1 blocks of the 30x40 step: its edge is on theirs


def _step(noise: float) -> tuple[np.ndarray, np.ndarray]:
    noisy, truth = noisy_step(noise)
    return noisy.round().astype(np.uint8), truth


def test_slic_and_slic0_recover_flat_regions_squares_and_a_noisy_step():
    image, truth = two_flat_regions()
    assert np.array_equal(slic_superpixels(image, 2), truth)
    assert np.array_equal(slic_superpixels(image, 2, zero=True, smoothing=0), truth)
    assert np.array_equal(slic_superpixels(BOARD, 12, compactness=1.0, smoothing=0), SQUARES)
    assert np.array_equal(slic_superpixels(BOARD, 12, zero=True, compactness=1.0, smoothing=0), SQUARES)
    noisy, step = _step(20.0)
    assert np.array_equal(slic_superpixels(noisy, 2, compactness=0.1), step)
    assert np.array_equal(slic_superpixels(noisy, 2, zero=True, compactness=1.0, smoothing=0), step)
    with pytest.raises(ValueError, match="segments must be at least 1"):
        slic_superpixels(image, 0)


def test_felzenszwalb_joins_what_its_scale_allows():
    image, truth = two_flat_regions()
    assert np.array_equal(felzenszwalb_segmentation(image), truth)
    # 8-neighbour graph: squares of one colour touch at corners, so the board is two regions
    assert np.array_equal(felzenszwalb_segmentation(BOARD, smoothing=0, min_size=1), BOARD // 200)
    noisy, step = _step(20.0)
    assert np.array_equal(felzenszwalb_segmentation(noisy, 300, min_size=50), step)
    assert felzenszwalb_segmentation(noisy, 1, min_size=1).max() > 100  # a tiny scale keeps the noise
    with pytest.raises(ValueError, match="grey"):
        felzenszwalb_segmentation(np.zeros((4, 4, 2)))


def test_region_graph_merging_by_mean_colour_and_by_normalised_cut():
    image, truth = two_flat_regions()
    columns = np.arange(16)[None].repeat(12, 0) // 3  # 3-column strips; the edge (column 9) is on a strip's side
    assert np.array_equal(merge_by_mean_colour(image, 0.1, regions=columns), truth)
    assert np.array_equal(normalised_cut(image, regions=columns), truth)
    assert np.array_equal(merge_by_mean_colour(image, 0.1), truth)  # from SLIC superpixels
    pixels = np.arange(BOARD.size).reshape(BOARD.shape)
    assert np.array_equal(merge_by_mean_colour(BOARD, 0.1, regions=pixels), BOARD // 200)  # corners join (8-neighbours)
    assert np.array_equal(merge_by_mean_colour(BOARD, 0.0, regions=SQUARES), SQUARES)  # nothing below 0
    assert np.array_equal(normalised_cut(BOARD, regions=SQUARES), BOARD // 200)
    noisy, step = _step(20.0)
    assert np.array_equal(merge_by_mean_colour(noisy, 0.2, regions=STRIPS), step)
    assert np.array_equal(normalised_cut(noisy, regions=STRIPS, sigma=0.1), step)
    with pytest.raises(ValueError, match="same size"):
        merge_by_mean_colour(noisy, regions=STRIPS[:-1])


def test_superpixel_and_graph_methods_leave_inputs_alone_and_repeat():
    noisy, _ = _step(20.0)
    image, _ = two_flat_regions()
    regions = STRIPS.copy()
    before = noisy.copy(), image.copy()
    runs = [lambda: slic_superpixels(image, 2), lambda: slic_superpixels(noisy, 4, zero=True), lambda: felzenszwalb_segmentation(noisy),
            lambda: merge_by_mean_colour(noisy, regions=regions), lambda: normalised_cut(noisy, regions=regions, seed=3)]
    for run in runs:
        assert np.array_equal(run(), run())
    assert np.array_equal(noisy, before[0]) and np.array_equal(image, before[1]) and np.array_equal(regions, STRIPS)
    assert raster_order(np.array([[7, 7, 3], [9, 3, 3]])).tolist() == [[0, 0, 1], [2, 1, 1]]
    assert np.array_equal(raster_order(SQUARES[::-1]), connected_regions(SQUARES[::-1]))
