"""Unsupervised region measures: hand-computed cases, scikit-image parity, several ground truths, BSDS sample."""

import itertools

import numpy as np
import pytest
from skimage.metrics import adapted_rand_error as skimage_are
from skimage.metrics import variation_of_information as skimage_voi

from omniseg.metrics import (adapted_rand_error, probabilistic_rand_index, rand_index, segmentation_covering,
                             variation_of_information)


def _random_maps(seed, shape=(23, 31)):
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 4, (4, 5))
    truth = np.kron(coarse, np.ones((6, 7), int))[: shape[0], : shape[1]]
    noisy = np.where(rng.random(shape) < 0.2, rng.integers(0, 6, shape), truth) * 3 + 1  # other label values
    return noisy, truth


def _rand_index_by_pairs(a, b):
    a, b = a.ravel(), b.ravel()
    agree = [(a[i] == a[j]) == (b[i] == b[j]) for i, j in itertools.combinations(range(a.size), 2)]
    return float(np.mean(agree))


@pytest.mark.parametrize("seed", range(4))
def test_rand_index_equals_counting_every_pixel_pair(seed):
    segmentation, truth = _random_maps(seed, shape=(9, 11))
    assert rand_index(segmentation, truth) == pytest.approx(_rand_index_by_pairs(segmentation, truth), abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_variation_of_information_and_adapted_rand_error_agree_with_scikit_image(seed):
    segmentation, truth = _random_maps(seed)
    bits = variation_of_information(segmentation, truth, base=2)
    assert bits == pytest.approx(sum(skimage_voi(segmentation, truth)), abs=1e-10)
    assert variation_of_information(segmentation, truth) == pytest.approx(bits * np.log(2), abs=1e-10)  # nats by default
    for ignore in ((0,), ()):
        ours = adapted_rand_error(truth, segmentation, ignore_labels=ignore)
        assert ours == pytest.approx(tuple(skimage_are(truth, segmentation, ignore_labels=ignore)), abs=1e-12)


def test_hand_computed_cases():
    two_regions = np.array([[0, 0, 1, 1], [0, 0, 1, 1]])
    assert rand_index(two_regions, two_regions + 5) == 1.0  # the same partition under other labels
    assert variation_of_information(two_regions, two_regions * 7) == pytest.approx(0.0)
    assert segmentation_covering(two_regions, two_regions) == 1.0
    one_region = np.zeros((2, 4), int)
    # 28 pairs; together in one_region: 28, in two_regions: 2 * 6 = 12 -> they agree on 12
    assert rand_index(one_region, two_regions) == pytest.approx(12 / 28)
    assert variation_of_information(one_region, two_regions) == pytest.approx(np.log(2))  # H(G|S) = ln 2, H(S|G) = 0
    assert segmentation_covering(one_region, two_regions) == pytest.approx(0.5)  # each half: IoU 4/8
    checkerboard = np.indices((4, 4)).sum(0) % 2
    assert segmentation_covering(np.arange(16).reshape(4, 4), checkerboard) == pytest.approx(1 / 8)  # single pixels


def test_several_ground_truths_average_as_bsds_does():
    segmentation = np.array([[0, 0, 1, 1]])
    first, second = np.array([[0, 0, 1, 1]]), np.array([[0, 0, 0, 1]])
    assert probabilistic_rand_index(segmentation, [first, second]) == pytest.approx((1.0 + 0.5) / 2)
    assert variation_of_information(segmentation, np.stack([first, second])) == pytest.approx(
        (0 + variation_of_information(segmentation, second)) / 2)
    # covering pools the regions of both truths: (4 * 1 + 3 * 2/3 + 1 * 1/2) / 8
    assert segmentation_covering(segmentation, [first, second]) == pytest.approx((4 + 2 + 0.5) / 8)


def test_inputs_are_checked_and_left_unmodified():
    segmentation, truth = _random_maps(0)
    before = segmentation.copy(), truth.copy()
    for measure in (rand_index, variation_of_information, segmentation_covering):
        measure(segmentation, truth)
    assert np.array_equal(segmentation, before[0]) and np.array_equal(truth, before[1])
    with pytest.raises(ValueError, match="must match"):
        rand_index(segmentation, truth[:-1])
    with pytest.raises(ValueError, match="no ground truth"):
        probabilistic_rand_index(segmentation, [])
