"""Clustering pixels in colour (optionally colour + position) space, then making regions connected."""

from __future__ import annotations

import numpy as np
from scipy.cluster.vq import kmeans2
from scipy.spatial import cKDTree

from omniseg.classical.images import unit_values
from omniseg.classical.regions import connected_regions


def pixel_features(image: np.ndarray, *, spatial_weight: float = 0.0) -> np.ndarray:
    """``[H * W, C (+ 2)]`` float64 features: the channels in 0..1 for uint8 images (as given otherwise),
    and with ``spatial_weight > 0`` the row and column divided by the larger side, times that weight."""
    values = unit_values(image)
    values = values[..., None] if values.ndim == 2 else values
    height, width = values.shape[:2]
    features = values.reshape(height * width, -1)
    if spatial_weight > 0:
        rows, columns = np.mgrid[0:height, 0:width] / max(height, width)
        features = np.hstack([features, spatial_weight * np.stack([rows.ravel(), columns.ravel()], 1)])
    return features


def kmeans_segmentation(image: np.ndarray, k: int, *, spatial_weight: float = 0.0, connect: bool = False, seed: int = 0,
                        iterations: int = 30) -> np.ndarray:
    """K-means (k-means++ start, scipy) on :func:`pixel_features`: labels ``[H, W]`` int64 ordered by the
    clusters' mean brightness (so results are comparable across seeds), or with ``connect`` the connected
    regions of those clusters (:func:`connected_regions`)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    image = np.asarray(image)
    features = pixel_features(image, spatial_weight=spatial_weight)
    distinct = np.unique(features, axis=0).shape[0]
    if distinct < k:
        raise ValueError(f"the image has {distinct} distinct pixel values, too few for k={k}; ask for at most {distinct}")
    centres, assignment = kmeans2(features, k, iter=iterations, minit="++", seed=np.random.default_rng(seed))
    channels = features.shape[1] - (2 if spatial_weight > 0 else 0)
    order = np.argsort(np.argsort(centres[:, :channels].mean(1), kind="stable"), kind="stable")  # rank by brightness
    labels = order[assignment].reshape(image.shape[:2]).astype(np.int64)
    return connected_regions(labels) if connect else labels


def mean_shift_segmentation(image: np.ndarray, bandwidth: float = 0.1, *, spatial_weight: float = 0.0, connect: bool = False,
                            iterations: int = 100, quantisation: float = 0.25, return_modes: bool = False):
    """Mean shift (Comaniciu & Meer, 2002) with a flat kernel of radius ``bandwidth`` on :func:`pixel_features`
    (colour in 0..1, plus scaled position with ``spatial_weight``): labels ``[H, W]`` int64 ordered by
    brightness as in k-means, or with ``connect`` their connected regions. Deterministic (no random start).

    Seeds: in every occupied cell of a grid of side ``bandwidth``, its most frequent feature vector. Each seed
    climbs to the weighted mean of the distinct feature vectors within ``bandwidth`` (weights: pixel counts;
    features are first rounded to a grid of ``quantisation * bandwidth``, 0 for none, which bounds the work)
    until it moves less than ``bandwidth / 1000``; modes within ``bandwidth`` of a mode with more support
    are merged into it; every pixel joins its nearest mode. With ``return_modes`` also returns the modes
    ``[K, F]`` in label order.
    """
    if bandwidth <= 0:
        raise ValueError(f"bandwidth must be positive (a radius in 0..1 colour units), got {bandwidth}")
    image = np.asarray(image)
    features = pixel_features(image, spatial_weight=spatial_weight)
    step = bandwidth * quantisation
    if step > 0:  # bins the features so the work grows with the occupied cells, not the pixels
        features = np.round(features / step) * step
    points, inverse, counts = np.unique(features, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    cells = np.floor(points / bandwidth).astype(np.int64)
    _, cell_of = np.unique(cells, axis=0, return_inverse=True)
    cell_of = cell_of.ravel()
    by_count = np.lexsort((-counts, cell_of))  # within each cell, the most frequent vector first
    first = np.ones(len(by_count), bool)
    first[1:] = cell_of[by_count[1:]] != cell_of[by_count[:-1]]
    modes = points[by_count[first]].copy()
    tree = cKDTree(points)
    active = np.ones(len(modes), bool)
    support = np.zeros(len(modes))
    for _ in range(iterations):
        index = np.flatnonzero(active)
        pairs = cKDTree(modes[index]).sparse_distance_matrix(tree, bandwidth, output_type="ndarray")
        weight = counts[pairs["j"]].astype(np.float64)
        total = np.bincount(pairs["i"], weight, minlength=len(index))
        shifted = np.stack([np.bincount(pairs["i"], weight * points[pairs["j"], d], minlength=len(index))
                            for d in range(points.shape[1])], 1) / np.maximum(total, 1e-12)[:, None]
        shifted[total == 0] = modes[index[total == 0]]
        moved = np.linalg.norm(shifted - modes[index], axis=1)
        modes[index], support[index] = shifted, total
        active[index[moved < bandwidth / 1000]] = False
        if not active.any():
            break
    kept: list[int] = []  # strongest modes first; a weaker one within bandwidth of a kept one is dropped
    suppressed = np.zeros(len(modes), bool)
    mode_tree = cKDTree(modes)
    for i in np.argsort(-support, kind="stable"):
        if not suppressed[i]:
            kept.append(int(i))
            suppressed[mode_tree.query_ball_point(modes[i], bandwidth)] = True
    centres = modes[kept]
    channels = points.shape[1] - (2 if spatial_weight > 0 else 0)
    order = np.argsort(centres[:, :channels].mean(1), kind="stable")
    centres = centres[order]
    nearest = cKDTree(centres).query(points)[1]
    labels = nearest[inverse].reshape(image.shape[:2]).astype(np.int64)
    labels = connected_regions(labels) if connect else labels
    return (labels, centres) if return_modes else labels


def gaussian_mixture_segmentation(image: np.ndarray, k: int, *, spatial_weight: float = 0.0, connect: bool = False, seed: int = 0,
                                  restarts: int = 2, iterations: int = 200, tolerance: float = 1e-7, regularisation: float = 1e-6,
                                  sample: int = 20000, return_log_likelihood: bool = False):
    """Bayesian classification of pixels: a ``k``-component Gaussian mixture (full covariances) fitted to
    :func:`pixel_features` by EM; each pixel takes the class of highest posterior probability. EM starts
    from :func:`kmeans_segmentation`'s clusters and from ``restarts - 1`` random soft assignments (seeded);
    the fit of highest likelihood is kept. Labels are ordered by mean brightness as in k-means.

    With ``return_log_likelihood`` also returns the kept fit's mean log-likelihood per pixel after each EM
    step (non-decreasing, as EM guarantees). ``regularisation`` is added to the covariances' diagonals.
    ``sample``: on larger images EM fits a seeded random sample of this many pixels (0: all of them); every
    pixel is then classified by the fitted mixture.
    """
    image = np.asarray(image)
    features = pixel_features(image, spatial_weight=spatial_weight)
    rng = np.random.default_rng(seed)
    start = kmeans_segmentation(image, k, spatial_weight=spatial_weight, seed=seed).ravel()
    fitted = features
    if 0 < sample < len(features):
        chosen = np.sort(rng.choice(len(features), sample, replace=False))
        fitted, start = features[chosen], start[chosen]
    starts = [np.eye(k)[start]] + [rng.dirichlet(np.ones(k), size=len(fitted)) for _ in range(max(restarts, 1) - 1)]
    weights, means, covariances, history = max(
        (_expectation_maximisation(fitted, start, iterations, tolerance, regularisation) for start in starts), key=lambda fit: fit[3][-1])
    channels = features.shape[1] - (2 if spatial_weight > 0 else 0)
    order = np.argsort(np.argsort(means[:, :channels].mean(1), kind="stable"), kind="stable")
    classes = _log_joint(features, weights, means, covariances).argmax(1)
    labels = order[classes].reshape(image.shape[:2]).astype(np.int64)
    labels = connected_regions(labels) if connect else labels
    return (labels, history) if return_log_likelihood else labels


def _expectation_maximisation(features: np.ndarray, responsibilities: np.ndarray, iterations: int, tolerance: float,
                              regularisation: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[float]]:
    """``(weights, means, covariances, mean log-likelihood per step)`` of EM from the given responsibilities;
    the parameters are those the last step's responsibilities came from."""
    history: list[float] = []
    for _ in range(iterations):
        weights, means, covariances = _m_step(features, responsibilities, regularisation)
        log_joint = _log_joint(features, weights, means, covariances)  # [N, k]: log p(x, class)
        top = log_joint.max(1, keepdims=True)
        log_evidence = top[:, 0] + np.log(np.exp(log_joint - top).sum(1))
        responsibilities = np.exp(log_joint - log_evidence[:, None])
        history.append(float(log_evidence.mean()))
        if len(history) > 1 and history[-1] - history[-2] < tolerance:
            break
    return weights, means, covariances, history


def _m_step(features: np.ndarray, responsibilities: np.ndarray, regularisation: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    totals = responsibilities.sum(0) + 1e-12
    means = responsibilities.T @ features / totals[:, None]
    covariances = np.empty((len(totals), features.shape[1], features.shape[1]))
    for c in range(len(totals)):
        centred = features - means[c]
        covariances[c] = (responsibilities[:, c, None] * centred).T @ centred / totals[c] + regularisation * np.eye(features.shape[1])
    return totals / totals.sum(), means, covariances


def _log_joint(features: np.ndarray, weights: np.ndarray, means: np.ndarray, covariances: np.ndarray) -> np.ndarray:
    dimension = features.shape[1]
    out = np.empty((features.shape[0], len(weights)))
    for c in range(len(weights)):
        cholesky = np.linalg.cholesky(covariances[c])
        solved = np.linalg.solve(cholesky, (features - means[c]).T)  # whitened deviations
        log_det = 2 * np.log(np.diag(cholesky)).sum()
        out[:, c] = np.log(weights[c] + 1e-300) - 0.5 * ((solved**2).sum(0) + log_det + dimension * np.log(2 * np.pi))
    return out
