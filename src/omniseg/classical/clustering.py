"""Clustering pixels in colour (optionally colour + position) space, then making regions connected."""

from __future__ import annotations

import numpy as np
from scipy.cluster.vq import kmeans2
from skimage.measure import label as connected_components


def pixel_features(image: np.ndarray, *, spatial_weight: float = 0.0) -> np.ndarray:
    """``[H * W, C (+ 2)]`` float64 features: the channels in 0..1 for uint8 images (as given otherwise),
    and with ``spatial_weight > 0`` the row and column divided by the larger side, times that weight."""
    image = np.asarray(image)
    values = image.astype(np.float64) / (255.0 if image.dtype == np.uint8 else 1.0)
    values = values[..., None] if values.ndim == 2 else values
    height, width = values.shape[:2]
    features = values.reshape(height * width, -1)
    if spatial_weight > 0:
        rows, columns = np.mgrid[0:height, 0:width] / max(height, width)
        features = np.hstack([features, spatial_weight * np.stack([rows.ravel(), columns.ravel()], 1)])
    return features


def connected_regions(labels: np.ndarray, *, connectivity: int = 1) -> np.ndarray:
    """Each connected piece of each label as its own region, numbered 0.. in raster order of first pixel.

    Example:
        >>> connected_regions(np.array([[0, 1, 0], [0, 1, 0]])).tolist()
        [[0, 1, 2], [0, 1, 2]]
    """
    return connected_components(np.asarray(labels), background=-1, connectivity=connectivity).astype(np.int64) - 1


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


def gaussian_mixture_segmentation(image: np.ndarray, k: int, *, spatial_weight: float = 0.0, connect: bool = False, seed: int = 0,
                                  restarts: int = 2, iterations: int = 200, tolerance: float = 1e-7, regularisation: float = 1e-6,
                                  return_log_likelihood: bool = False):
    """Bayesian classification of pixels: a ``k``-component Gaussian mixture (full covariances) fitted to
    :func:`pixel_features` by EM; each pixel takes the class of highest posterior probability. EM starts
    from :func:`kmeans_segmentation`'s clusters and from ``restarts - 1`` random soft assignments (seeded);
    the fit of highest likelihood is kept. Labels are ordered by mean brightness as in k-means.

    With ``return_log_likelihood`` also returns the kept fit's mean log-likelihood per pixel after each EM
    step (non-decreasing, as EM guarantees). ``regularisation`` is added to the covariances' diagonals.
    """
    image = np.asarray(image)
    features = pixel_features(image, spatial_weight=spatial_weight)
    rng = np.random.default_rng(seed)
    starts = [np.eye(k)[kmeans_segmentation(image, k, spatial_weight=spatial_weight, seed=seed).ravel()]]
    starts += [rng.dirichlet(np.ones(k), size=len(features)) for _ in range(max(restarts, 1) - 1)]
    best = max((_expectation_maximisation(features, start, iterations, tolerance, regularisation) for start in starts),
               key=lambda fit: fit[2][-1])
    means, responsibilities, history = best
    channels = features.shape[1] - (2 if spatial_weight > 0 else 0)
    order = np.argsort(np.argsort(means[:, :channels].mean(1), kind="stable"), kind="stable")
    labels = order[responsibilities.argmax(1)].reshape(image.shape[:2]).astype(np.int64)
    labels = connected_regions(labels) if connect else labels
    return (labels, history) if return_log_likelihood else labels


def _expectation_maximisation(features: np.ndarray, responsibilities: np.ndarray, iterations: int, tolerance: float,
                              regularisation: float) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """``(means, responsibilities, mean log-likelihood per step)`` of EM from the given responsibilities."""
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
    return means, responsibilities, history


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
