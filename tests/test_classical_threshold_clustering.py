"""Thresholding and clustering on hand-built arrays: exact labels, determinism, inputs left unmodified."""

import numpy as np
import pytest
from skimage.filters import threshold_multiotsu, threshold_otsu

from omniseg.classical import connected_regions, kmeans_segmentation, multi_otsu_segmentation, otsu_segmentation

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
    from omniseg.classical import gaussian_mixture_segmentation

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
