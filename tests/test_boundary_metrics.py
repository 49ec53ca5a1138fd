"""Boundary precision / recall / F with the BSDS protocol, and ODS / OIS: hand-computed cases, the matching
against scipy's maximum matching, and the shared BSDS sample."""

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from omniseg.metrics import (BoundaryCounts, boundary_counts, boundary_scores, label_boundaries, optimal_boundary_scores,
                             optimal_region_scores)
from omniseg.metrics.boundary import _disk_offsets, _maximum_matching, match_boundaries

from .conftest import SHARED_DATA


def _column(shape: tuple[int, int], column: int, width: int = 1) -> np.ndarray:
    boundary = np.zeros(shape, bool)
    boundary[:, column : column + width] = True
    return boundary


def test_label_boundaries_mark_one_side_of_each_change():
    labels = np.array([[0, 0, 1], [0, 0, 1], [2, 2, 2]])
    assert label_boundaries(labels).astype(int).tolist() == [[0, 1, 0], [1, 1, 1], [0, 0, 0]]
    assert not label_boundaries(np.zeros((3, 3), int)).any()


def test_matches_within_the_tolerance_only_and_one_to_one():
    shape = (100, 100)  # diagonal 141.4: the BSDS tolerance 0.0075 is 1.06 px, 0.02 is 2.83 px
    truth = _column(shape, 50)
    assert boundary_counts(truth, truth) == BoundaryCounts(100, 100, 100, 100)
    assert boundary_counts(_column(shape, 51), truth) == BoundaryCounts(100, 100, 100, 100)  # 1 px <= 1.06
    assert boundary_counts(_column(shape, 52), truth) == BoundaryCounts(0, 100, 0, 100)  # 2 px > 1.06
    assert boundary_counts(_column(shape, 52), truth, tolerance=0.02).f == 1.0
    # a two-pixel-thick prediction: each truth pixel takes one predicted pixel, so half the prediction is unmatched
    thick = _column(shape, 50, width=2)
    counts = boundary_counts(thick, truth, thin_prediction=False)
    assert counts == BoundaryCounts(100, 200, 100, 100)
    assert (counts.precision, counts.recall) == (0.5, 1.0) and counts.f == pytest.approx(2 / 3)
    # thinned first, as the benchmark does: one column of 99 pixels (thinning erodes the bar's end)
    assert boundary_counts(thick, truth) == BoundaryCounts(99, 99, 99, 100)
    # nothing predicted, or nothing to find: zero, as the BSDS code divides
    assert boundary_counts(np.zeros(shape, bool), truth).scores() == {"precision": 0.0, "recall": 0.0, "f": 0.0}


def test_several_annotators_pool_recall_and_share_precision():
    shape = (100, 100)
    prediction = _column(shape, 20) | _column(shape, 70)
    first, second = _column(shape, 20), _column(shape, 20) | _column(shape, 70)
    counts = boundary_counts(prediction, np.stack([first, second]))
    # every predicted pixel is matched by the second annotator; recall counts each annotator's pixels
    assert counts == BoundaryCounts(200, 200, 100 + 200, 100 + 200)
    only_first = boundary_counts(_column(shape, 20), np.stack([first, second]))
    assert only_first == BoundaryCounts(100, 100, 100 + 100, 100 + 200)
    assert only_first.recall == pytest.approx(2 / 3)
    labels = np.zeros(shape, int)
    labels[:, 21:] = 1  # its boundary is column 20
    assert boundary_scores(labels, first) == {"precision": 1.0, "recall": 1.0, "f": 1.0}
    with pytest.raises(ValueError, match="do not match"):
        boundary_counts(prediction, first[:50])


def test_the_matching_is_maximum_like_scipys():
    rng = np.random.default_rng(0)
    for trial in range(20):
        prediction, truth = rng.random((2, 24, 24)) < rng.uniform(0.05, 0.4)
        radius = rng.uniform(1.0, 3.0)
        matched_prediction, matched_truth = match_boundaries(prediction, truth, radius)
        assert matched_prediction.sum() == matched_truth.sum()
        assert not (matched_prediction & ~prediction).any() and not (matched_truth & ~truth).any()
        points, targets = np.argwhere(prediction), np.argwhere(truth)
        near = np.linalg.norm(points[:, None] - targets[None], axis=2) <= radius
        reference = maximum_bipartite_matching(csr_matrix(near.astype(np.int8)), perm_type="column")
        assert matched_prediction.sum() == (reference >= 0).sum(), trial
    # a case greedy matching gets wrong: left 0 takes right 0 first, but the maximum needs 0-1 and 1-0
    assert _maximum_matching(np.array([[0, 1], [0, -1]]), 2).tolist() == [1, 0]
    assert len(_disk_offsets(1.5)) == 9 and len(_disk_offsets(2.0)) == 13


def test_ods_takes_the_best_setting_and_ois_each_images_best():
    # two settings x two images; counts (matched prediction, prediction, matched truth, truth)
    counts = np.array([[[8, 10, 8, 10], [1, 10, 1, 10]],    # setting 0: image 0 F 0.8, image 1 F 0.1
                       [[5, 10, 5, 10], [6, 10, 6, 10]]])   # setting 1: image 0 F 0.5, image 1 F 0.6
    scores = optimal_boundary_scores(counts)
    assert scores["ods"] == {"precision": 0.55, "recall": 0.55, "f": pytest.approx(0.55), "setting": 1}  # 11/20 beats 9/20
    assert scores["ois"]["f"] == pytest.approx(14 / 20)  # image 0 from setting 0, image 1 from setting 1
    region = optimal_region_scores(np.array([[0.9, 0.2], [0.6, 0.7]]))
    assert region == {"ods": pytest.approx(0.65), "ods_setting": 1, "ois": pytest.approx(0.8)}
    voi = optimal_region_scores(np.array([[1.0, 3.0], [2.0, 1.5]]), higher_is_better=False)
    assert voi == {"ods": pytest.approx(1.75), "ods_setting": 1, "ois": pytest.approx(1.25)}
    with pytest.raises(ValueError, match="settings, images, 4"):
        optimal_boundary_scores(np.zeros((2, 4)))


@pytest.mark.skipif(not (SHARED_DATA / "bsds500").is_dir(), reason="needs ../shared/data/bsds500")
def test_a_human_segmentation_against_the_bsds_truth():
    from omniseg.data.formats.bsds import read_bsds_truth

    segmentations, boundaries = read_bsds_truth(SHARED_DATA / "bsds500" / "groundTruth" / "train" / "100075.mat")
    # each annotator's own boundary map (drawn on the other side of the edge than ours) matches entirely
    counts = boundary_counts(label_boundaries(segmentations[0]), boundaries[0])
    assert counts.matched_truth == counts.truth == boundaries[0].sum() and counts.precision > 0.99
    everyone = boundary_counts(boundaries[0], boundaries)
    assert everyone.precision == 1.0 and 0.5 < everyone.recall < 1.0  # others draw edges the first did not
