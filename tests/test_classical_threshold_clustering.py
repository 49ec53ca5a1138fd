"""Thresholding and clustering on hand-built arrays: exact labels, determinism, inputs left unmodified."""

import numpy as np
import pytest
from skimage.filters import threshold_multiotsu, threshold_otsu

from omniseg.classical import (connected_regions, gaussian_mixture_segmentation, kmeans_segmentation, mean_shift_segmentation,
                               multi_otsu_segmentation, otsu_segmentation)

from .conftest import noisy_step, two_flat_regions


def test_otsu_on_flat_regions_and_a_noisy_step_edge():
    image, truth = two_flat_regions()
    labels, threshold = otsu_segmentation(image)
    assert np.array_equal(labels, truth)
    step, step_truth = noisy_step(12.0)
    labels, threshold = otsu_segmentation(step)
    assert np.array_equal(labels, step_truth)  # 60 and 180 +- 12 (5 sigma apart from the middle)
    assert abs(threshold - threshold_otsu(step)) <= (step.max() - step.min()) / 256  # scikit-image's value, to a bin
    assert otsu_segmentation(np.full((4, 4), 7))[0].sum() == 0  # a flat image is one region


def test_multi_otsu_orders_classes_by_brightness():
    image = np.repeat(np.array([[20.0, 120.0, 230.0]]), 4, axis=1).repeat(3, axis=0)
    image[0, 0], image[-1, -1] = 25.0, 225.0
    labels, thresholds = multi_otsu_segmentation(image, classes=3)
    assert labels.tolist() == [[0] * 4 + [1] * 4 + [2] * 4] * 3
    expected = threshold_multiotsu(image, classes=3)
    assert np.allclose(thresholds, expected, atol=(image.max() - image.min()) / 256)
    with pytest.raises(ValueError, match="too few"):
        multi_otsu_segmentation(np.array([[0.0, 1.0]]), classes=3)


def test_kmeans_recovers_flat_regions_and_orders_clusters_by_brightness():
    image, truth = two_flat_regions()
    assert np.array_equal(kmeans_segmentation(image, 2, seed=0), truth)
    assert np.array_equal(kmeans_segmentation(image, 2, seed=7), truth)  # same labels whatever the seed
    rng = np.random.default_rng(1)
    noisy = np.clip(image + rng.normal(0, 10, image.shape), 0, 255).astype(np.uint8)
    assert np.array_equal(kmeans_segmentation(noisy, 2, seed=3), truth)


def test_kmeans_connected_regions_split_a_checkerboard_into_its_squares():
    board = (np.indices((4, 4)).sum(0) % 2).repeat(3, 0).repeat(3, 1).astype(np.uint8) * 200
    colours = kmeans_segmentation(board, 2)
    assert np.array_equal(colours, (board > 0).astype(np.int64))
    regions = kmeans_segmentation(board, 2, connect=True)
    assert regions.max() + 1 == 16  # two colours, sixteen connected squares
    assert all(np.unique(regions[3 * i : 3 * i + 3, 3 * j : 3 * j + 3]).size == 1 for i in range(4) for j in range(4))


def test_spatial_weight_separates_same_colour_regions():
    image = np.zeros((10, 30), np.uint8)
    image[:, 10:20] = 255  # dark | bright | dark: colour alone gives 2 clusters
    labels = kmeans_segmentation(image, 3, spatial_weight=4.0)
    assert [np.unique(labels[:, a:b]).size for a, b in ((0, 10), (10, 20), (20, 30))] == [1, 1, 1]
    assert np.unique(labels).size == 3


def test_inputs_are_not_modified_and_results_are_deterministic():
    image, _ = two_flat_regions()
    noisy, _ = noisy_step(12.0)
    before = image.copy(), noisy.copy()
    first = [otsu_segmentation(noisy)[0], multi_otsu_segmentation(noisy, 3)[0], kmeans_segmentation(image, 2, seed=5)]
    second = [otsu_segmentation(noisy)[0], multi_otsu_segmentation(noisy, 3)[0], kmeans_segmentation(image, 2, seed=5)]
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert np.array_equal(image, before[0]) and np.array_equal(noisy, before[1])
    assert connected_regions(np.array([[2, 2, 5], [5, 2, 5]])).tolist() == [[0, 0, 1], [2, 0, 1]]
    with pytest.raises(ValueError, match="too few for k=3"):
        kmeans_segmentation(image, 3)


def test_gaussian_mixture_puts_the_boundary_where_the_spreads_say():
    """A smooth dark half (0.3, sigma 0.01) and a textured bright half (0.6 +- 0.24): k-means splits colours
    halfway between the means and gives the textured half's dark pixels to the smooth half; the mixture's
    covariances move the decision boundary next to the narrow class, so every pixel is right. EM's
    log-likelihood never decreases."""
    rng = np.random.default_rng(0)
    image = np.empty((16, 24))
    image[:, :12] = 0.3 + np.clip(rng.normal(0, 0.01, (16, 12)), -0.03, 0.03)
    image[:, 12:] = 0.6 + rng.uniform(-0.24, 0.24, (16, 12))
    truth = np.zeros((16, 24), np.int64)
    truth[:, 12:] = 1
    labels, history = gaussian_mixture_segmentation(image, 2, return_log_likelihood=True)
    assert np.array_equal(labels, truth)
    assert all(b >= a - 1e-9 for a, b in zip(history, history[1:]))
    kmeans = kmeans_segmentation(image, 2)
    assert (kmeans[:, 12:] == 0).sum() > 5 and np.array_equal(kmeans[:, :12], truth[:, :12])
    noisy = np.clip(two_flat_regions()[0] + rng.normal(0, 8, (12, 16, 3)), 0, 255).astype(np.uint8)
    assert np.array_equal(gaussian_mixture_segmentation(noisy, 2), two_flat_regions()[1])


def test_mean_shift_finds_the_modes_of_flat_regions_steps_and_checkerboards():
    image, truth = two_flat_regions()
    labels, modes = mean_shift_segmentation(image, 0.1, quantisation=0, return_modes=True)
    assert np.array_equal(labels, truth)
    colours = np.array([[40, 40, 40], [200, 180, 60]]) / 255
    assert np.allclose(modes, colours)  # each flat colour is its own mode
    labels, modes = mean_shift_segmentation(image, 0.1, return_modes=True)  # features binned to 0.025: modes within half a bin
    assert np.array_equal(labels, truth) and np.abs(modes - colours).max() <= 0.0125 + 1e-12
    noisy, step_truth = noisy_step(12.0)
    assert np.array_equal(mean_shift_segmentation(noisy.round().astype(np.uint8), 0.2), step_truth)
    # a wide kernel sees one mode: one cluster
    assert mean_shift_segmentation(noisy.round().astype(np.uint8), 0.6).max() == 0
    board = np.kron(np.indices((3, 4)).sum(0) % 2, np.ones((4, 4), int)).astype(np.uint8) * 200
    assert np.array_equal(mean_shift_segmentation(board, 0.1), board // 200)
    assert np.array_equal(mean_shift_segmentation(board, 0.1, connect=True), connected_regions(board // 200))
    # with position, two squares of one colour far apart are different modes
    pair = np.zeros((10, 30), np.uint8)
    pair[:, :10] = pair[:, 20:] = 200
    assert mean_shift_segmentation(pair, 0.3).max() == 1
    assert np.unique(mean_shift_segmentation(pair, 0.3, spatial_weight=2.0)[:, [0, 15, 29]]).size == 3


def test_mean_shift_leaves_its_input_alone_and_checks_the_bandwidth():
    noisy, _ = noisy_step(12.0)
    before = noisy.copy()
    first = mean_shift_segmentation(noisy / 255, 0.2, quantisation=0)
    assert np.array_equal(first, mean_shift_segmentation(noisy / 255, 0.2, quantisation=0))
    assert np.array_equal(noisy, before)
    with pytest.raises(ValueError, match="bandwidth must be positive"):
        mean_shift_segmentation(noisy, 0.0)


def test_gaussian_mixture_fits_a_sample_of_large_images_and_labels_every_pixel():
    rng = np.random.default_rng(3)
    clean = np.where(np.arange(200)[None, :] < 90, 60.0, 180.0) * np.ones((150, 1))  # 30,000 pixels
    noisy = np.clip(clean + rng.normal(0, 12, clean.shape), 0, 255).round().astype(np.uint8)
    truth = (clean > 100).astype(np.int64)
    assert np.array_equal(gaussian_mixture_segmentation(noisy, 2, sample=5000), truth)
    assert np.array_equal(gaussian_mixture_segmentation(noisy, 2, sample=0), truth)  # EM on every pixel
