"""Watershed and Potts-MRF segmentation on hand-built arrays: exact labels, inputs left unmodified."""

import numpy as np
import pytest

from omniseg.classical import gradient_magnitude, mrf_segmentation, watershed_segmentation
from omniseg.classical.mrf import disagreements

from .conftest import noisy_step, two_flat_regions


def test_watershed_splits_two_flat_regions_at_the_step():
    image, truth = two_flat_regions()
    assert np.array_equal(watershed_segmentation(image), truth)
    assert np.array_equal(watershed_segmentation(image, compactness=0.01), truth)


def test_watershed_h_controls_over_segmentation_and_seeds_decide_regions():
    rng = np.random.default_rng(2)
    image, truth = two_flat_regions()
    noisy = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
    shallow = watershed_segmentation(noisy, h=0.0, smoothing=0)
    assert shallow.max() + 1 > 2  # every noise minimum seeds a region
    assert watershed_segmentation(noisy, h=0.3, smoothing=1.0).max() + 1 == 2
    seeds = np.zeros((12, 16), np.int64)
    seeds[6, 2], seeds[6, 14] = 7, 3  # any positive values; regions follow the seed values' order
    labels = watershed_segmentation(noisy, markers=seeds)
    assert np.array_equal(labels, 1 - truth)  # seed 3 (region 0) is on the right
    with pytest.raises(ValueError, match="no seed"):
        watershed_segmentation(noisy, markers=np.zeros((12, 16), int))
    with pytest.raises(ValueError, match="grid"):
        watershed_segmentation(noisy, markers=seeds[:-1])
    assert gradient_magnitude(image).max() == 1.0 and gradient_magnitude(np.zeros((4, 4))).max() == 0.0


def test_disagreements_count_4_neighbours_with_another_label():
    labels = np.array([[0, 1], [1, 1]])
    assert disagreements(labels, 2)[0].tolist() == [[2, 1], [1, 2]]  # corner pixels have 2 neighbours
    assert disagreements(labels, 2)[1].tolist() == [[0, 1], [1, 0]]


def test_icm_and_annealed_gibbs_remove_the_noise_that_pixelwise_labels_keep():
    noisy, truth = noisy_step(45.0)
    pixelwise = mrf_segmentation(noisy, 2, beta=0.0)
    assert (pixelwise != truth).sum() > 50  # sigma 45 around 60 and 180: many pixels cross over
    assert np.array_equal(mrf_segmentation(noisy, 2, beta=2.5, method="icm"), truth)
    assert np.array_equal(mrf_segmentation(noisy, 2, beta=2.5, method="gibbs", iterations=30, seed=1), truth)


def test_mrf_on_a_checkerboard_with_a_zero_prior_keeps_every_square():
    board = (np.indices((6, 6)).sum(0) % 2).astype(np.uint8) * 200  # single-pixel squares
    assert np.array_equal(mrf_segmentation(board, 2, beta=0.0), (board > 0).astype(np.int64))
    # noiseless classes are certain: their likelihood outweighs any moderate prior, even against 4 neighbours
    assert np.array_equal(mrf_segmentation(board, 2, beta=10.0), (board > 0).astype(np.int64))


def test_inputs_are_not_modified_and_seeded_runs_repeat():
    noisy, _ = noisy_step(45.0)
    image, _ = two_flat_regions()
    before = noisy.copy(), image.copy()
    first = mrf_segmentation(noisy, 2, method="gibbs", iterations=5, seed=4)
    assert np.array_equal(first, mrf_segmentation(noisy, 2, method="gibbs", iterations=5, seed=4))
    watershed_segmentation(image)
    assert np.array_equal(noisy, before[0]) and np.array_equal(image, before[1])
    with pytest.raises(ValueError, match="icm' or 'gibbs"):
        mrf_segmentation(noisy, 2, method="mean-field")


def test_multiscale_mrf_settles_coarse_to_fine_on_the_same_labels():
    noisy, truth = noisy_step(45.0)
    assert np.array_equal(mrf_segmentation(noisy, 2, beta=2.5, scales=3), truth)
    assert np.array_equal(mrf_segmentation(noisy, 2, beta=2.5, method="gibbs", iterations=20, scales=2, seed=1), truth)
    board = (np.indices((6, 6)).sum(0) % 2).astype(np.uint8) * 200  # blocks of 2x2 average to grey: fine level fixes it
    assert np.array_equal(mrf_segmentation(board, 2, beta=0.0, scales=2), (board > 0).astype(np.int64))
    with pytest.raises(ValueError, match="scales must be at least 1"):
        mrf_segmentation(noisy, 2, scales=0)
