"""Region measures of a segmentation against human segmentations (label maps, any label values):
probabilistic Rand index, variation of information and segmentation covering, each against several
ground truths at once as the BSDS benchmark uses them (Arbelaez et al., 2011), and the adapted Rand
error of connectomics (Arganda-Carreras et al., 2015).

All of them are computed from the contingency table of the two label maps (pixel counts of each pair
of labels), never from pixel pairs, so a 481x321 image costs one ``np.unique``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from omniseg.metrics.boundary import boundary_counts, label_boundaries


def contingency(segmentation: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(counts [S, T], rows, columns)``: pixels of each (segment, ground-truth region) pair, with the
    labels that rows and columns stand for. The two maps must have the same shape."""
    segmentation, truth = np.asarray(segmentation), np.asarray(truth)
    if segmentation.shape != truth.shape:
        raise ValueError(f"segmentation is {segmentation.shape} but ground truth is {truth.shape}; they must match")
    rows, row_index = np.unique(segmentation.ravel(), return_inverse=True)
    columns, column_index = np.unique(truth.ravel(), return_inverse=True)
    counts = np.zeros((len(rows), len(columns)), np.int64)
    np.add.at(counts, (row_index, column_index), 1)
    return counts, rows, columns


def _pairs(counts: np.ndarray) -> float:
    """Pixel pairs within the groups of these sizes: sum of n (n - 1) / 2."""
    counts = np.asarray(counts, np.float64)
    return float((counts * (counts - 1)).sum() / 2)


def rand_index(segmentation: np.ndarray, truth: np.ndarray) -> float:
    """The share of pixel pairs on which the two label maps agree (both together or both apart).

    Example:
        >>> rand_index(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 1]))
        0.5
    """
    counts, _, _ = contingency(segmentation, truth)
    total = _pairs(np.array([counts.sum()]))
    if total == 0:
        return 1.0
    together_both = _pairs(counts)
    return (total - _pairs(counts.sum(1)) - _pairs(counts.sum(0)) + 2 * together_both) / total


def probabilistic_rand_index(segmentation: np.ndarray, truths: Sequence[np.ndarray]) -> float:
    """PRI (Unnikrishnan et al., 2007): the Rand index averaged over the human segmentations, i.e. the
    expected agreement with a pixel pair's empirical probability of lying in one region."""
    return float(np.mean([rand_index(segmentation, truth) for truth in _truths(truths, segmentation)]))


def _entropy(counts: np.ndarray, base: float) -> float:
    p = np.asarray(counts, np.float64).ravel()
    p = p[p > 0] / p.sum()
    return float(-(p * np.log(p)).sum() / np.log(base))


def variation_of_information(segmentation: np.ndarray, truths: Sequence[np.ndarray] | np.ndarray, *, base: float = np.e) -> float:
    """VoI (Meila, 2005) averaged over the ground truths: ``H(S|G) + H(G|S)`` = ``2 H(S, G) - H(S) - H(G)``;
    0 for identical partitions. Entropies in nats (``base=2``: bits, as scikit-image reports them).

    Example:
        >>> round(variation_of_information(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 0])), 4)  # ln 2
        0.6931
    """
    values = []
    for truth in _truths(truths, segmentation):
        counts, _, _ = contingency(segmentation, truth)
        values.append(2 * _entropy(counts, base) - _entropy(counts.sum(1), base) - _entropy(counts.sum(0), base))
    return float(np.mean(values))


def segmentation_covering(segmentation: np.ndarray, truths: Sequence[np.ndarray] | np.ndarray) -> float:
    """Covering of the ground truths by the segmentation (Arbelaez et al., 2011): each ground-truth
    region's best IoU with a segment, weighted by the region's area, over the regions of all ground
    truths together (as the BSDS code accumulates them).

    Example:
        >>> segmentation_covering(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 1]))  # (3 * 2/3 + 1 * 1/2) / 4
        0.625
    """
    covered, area = 0.0, 0
    for truth in _truths(truths, segmentation):
        counts, _, _ = contingency(segmentation, truth)
        union = counts.sum(1)[:, None] + counts.sum(0)[None, :] - counts
        best = (counts / union).max(0)
        covered += float((best * counts.sum(0)).sum())
        area += int(counts.sum())
    return covered / area


def adapted_rand_error(truth: np.ndarray, segmentation: np.ndarray, *, ignore_labels: Sequence[int] = (0,)) -> tuple[float, float, float]:
    """``(error, precision, recall)`` of the adapted Rand index (SNEMI3D's measure, as scikit-image defines
    computes it): pixels whose truth label is in ``ignore_labels`` are left out; precision and recall are the
    pixel pairs together in both maps over the pairs together in the truth / in the segmentation.

    Example:
        >>> adapted_rand_error(np.array([1, 1, 2, 2]), np.array([1, 1, 2, 2]))
        (0.0, 1.0, 1.0)
    """
    truth, segmentation = np.asarray(truth), np.asarray(segmentation)
    if truth.shape != segmentation.shape:
        raise ValueError(f"ground truth is {truth.shape} but segmentation is {segmentation.shape}; they must match")
    keep = ~np.isin(truth, list(ignore_labels))
    counts, _, _ = contingency(truth[keep], segmentation[keep])  # rows: truth, columns: segmentation
    together = _pairs(counts)
    together_truth, together_segmentation = _pairs(counts.sum(1)), _pairs(counts.sum(0))
    precision = together / together_truth if together_truth else 1.0
    recall = together / together_segmentation if together_segmentation else 1.0
    total = together_truth + together_segmentation
    fscore = 2 * together / total if total else 1.0
    return float(1.0 - fscore), float(precision), float(recall)


def _truths(truths: Sequence[np.ndarray] | np.ndarray, segmentation: np.ndarray) -> list[np.ndarray]:
    """One ground truth (shaped as the segmentation) or several ([A, H, W] array or a list) as a non-empty list."""
    if isinstance(truths, np.ndarray) and truths.ndim == np.ndim(segmentation):
        return [truths]
    listed = list(truths)
    if not listed:
        raise ValueError("no ground truth given; pass one label map [H, W] or several")
    return listed


def unsupervised_scores(segmentation: np.ndarray, truth_segmentations: Sequence[np.ndarray] | np.ndarray,
                        truth_boundaries: Sequence[np.ndarray] | np.ndarray, *, tolerance: float = 0.0075) -> dict:
    """The BSDS benchmark's four measures of one segmentation against all its human segmentations:
    ``{"pri", "voi" (nats), "covering", "boundary": BoundaryCounts}`` (sum the counts over images before
    dividing, as :class:`~omniseg.metrics.boundary.BoundaryCounts` explains)."""
    return {"pri": probabilistic_rand_index(segmentation, truth_segmentations),
            "voi": variation_of_information(segmentation, truth_segmentations),
            "covering": segmentation_covering(segmentation, truth_segmentations),
            "boundary": boundary_counts(label_boundaries(segmentation), truth_boundaries, tolerance=tolerance)}
