"""Markov random field segmentation with a Potts prior: Gaussian class likelihoods in colour space (started
from k-means) plus ``beta`` for every 4-neighbour with another label, minimised by ICM (Besag, 1986) or
sampled by a Gibbs sampler under simulated annealing (Geman & Geman, 1984).

Both update the pixels of one checkerboard colour at once (their neighbours are all of the other colour,
so a simultaneous update is exact), so a sweep is a few array operations, never a loop over pixels.
"""

from __future__ import annotations

import numpy as np

from omniseg.classical.clustering import kmeans_segmentation, pixel_features
from omniseg.classical.images import unit_values


def class_costs(features: np.ndarray, labels: np.ndarray, k: int, regularisation: float = 1e-4) -> np.ndarray:
    """``[k, N]`` negative log-likelihoods of every pixel under each class's Gaussian (diagonal covariance),
    the Gaussians fitted to the pixels now carrying that label (an empty class gets the global fit)."""
    costs = np.empty((k, len(features)))
    for c in range(k):
        members = features[labels == c] if (labels == c).any() else features
        mean, variance = members.mean(0), members.var(0) + regularisation
        costs[c] = 0.5 * (((features - mean) ** 2 / variance).sum(1) + np.log(2 * np.pi * variance).sum())
    return costs


def disagreements(labels: np.ndarray, k: int) -> np.ndarray:
    """``[k, H, W]``: how many of each pixel's 4-neighbours carry a label other than ``c``."""
    one_hot = np.eye(k, dtype=np.int64)[labels].transpose(2, 0, 1)
    padded = np.pad(one_hot, ((0, 0), (1, 1), (1, 1)))
    same = padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1] + padded[:, 1:-1, :-2] + padded[:, 1:-1, 2:]
    neighbours = np.pad(np.ones(labels.shape, np.int64), 1)
    count = neighbours[:-2, 1:-1] + neighbours[2:, 1:-1] + neighbours[1:-1, :-2] + neighbours[1:-1, 2:]
    return count[None] - same


def mrf_segmentation(image: np.ndarray, k: int, *, beta: float = 1.0, method: str = "icm", iterations: int = 10,
                     start_temperature: float = 4.0, end_temperature: float = 0.05, relearn: bool = True, scales: int = 1,
                     seed: int = 0) -> np.ndarray:
    """Labels ``[H, W]`` int64 in 0..k-1 (ordered by brightness, as k-means's start) of the Potts MRF.

    Args:
        beta: the Potts weight per disagreeing neighbour (0: per-pixel maximum likelihood).
        method: "icm" (each pixel takes its lowest-energy label, sweep after sweep, until nothing changes or
            ``iterations`` sweeps) or "gibbs" (each pixel samples its label from ``exp(-energy / T)`` while
            T falls geometrically from ``start_temperature`` to ``end_temperature`` over ``iterations``
            sweeps; the last sweep takes the lowest-energy labels).
        relearn: re-fit the class Gaussians to the labels after each sweep.
        scales: coarse-to-fine levels (1: the image only). Level s is the image averaged over 2^s x 2^s
            blocks; k-means starts the coarsest, and each level starts from the coarser one's labels
            enlarged, so large regions settle cheaply before the full-size sweeps refine their edges (a level
            that would be under 2 pixels or hold fewer distinct colours than ``k`` is not made).
    """
    if method not in ("icm", "gibbs"):
        raise ValueError(f"method must be 'icm' or 'gibbs', got {method!r}")
    if scales < 1:
        raise ValueError(f"scales must be at least 1, got {scales}")
    image = np.asarray(image)
    rng = np.random.default_rng(seed)
    pyramid = [unit_values(image)]
    for _ in range(scales - 1):
        coarser = _halve(pyramid[-1])
        if min(coarser.shape[:2]) < 2 or len(np.unique(coarser.reshape(-1, *coarser.shape[2:]), axis=0)) < k:
            break  # too small, or averaged into fewer colours than classes: start from the finer level
        pyramid.append(coarser)
    labels = kmeans_segmentation(pyramid[-1], k, seed=seed)
    for level in reversed(pyramid):
        if labels.shape != level.shape[:2]:  # enlarge the coarser labels (nearest), cropping the odd row/column
            labels = np.repeat(np.repeat(labels, 2, 0), 2, 1)
            labels = np.pad(labels, [(0, max(0, n - m)) for n, m in zip(level.shape[:2], labels.shape)], mode="edge")
            labels = labels[: level.shape[0], : level.shape[1]]
        labels = _sweeps(pixel_features(level), labels, k, beta, method, iterations, start_temperature, end_temperature, relearn, rng)
    return labels


def _halve(image: np.ndarray) -> np.ndarray:
    """The image averaged over 2 x 2 blocks (a last odd row or column averaged with itself)."""
    height, width = image.shape[:2]
    padded = np.pad(image, [(0, height % 2), (0, width % 2)] + [(0, 0)] * (image.ndim - 2), mode="edge")
    return (padded[0::2, 0::2] + padded[1::2, 0::2] + padded[0::2, 1::2] + padded[1::2, 1::2]) / 4


def _sweeps(features: np.ndarray, labels: np.ndarray, k: int, beta: float, method: str, iterations: int, start_temperature: float,
            end_temperature: float, relearn: bool, rng: np.random.Generator) -> np.ndarray:
    """ICM or annealed Gibbs sweeps (see :func:`mrf_segmentation`) from ``labels``, which are updated in place."""
    height, width = labels.shape
    colours = (np.indices((height, width)).sum(0) % 2).astype(bool)
    costs = class_costs(features, labels.ravel(), k).reshape(k, height, width)
    temperatures = np.geomspace(start_temperature, end_temperature, max(iterations, 1))
    for sweep in range(iterations):
        before = labels.copy()
        for colour in (False, True):
            energy = costs + beta * disagreements(labels, k)  # [k, H, W]
            chosen = colours == colour
            if method == "gibbs" and sweep < iterations - 1:
                logits = -energy[:, chosen] / temperatures[sweep]
                probabilities = np.exp(logits - logits.max(0))
                probabilities /= probabilities.sum(0)
                draws = rng.random(probabilities.shape[1])
                labels[chosen] = np.minimum((probabilities.cumsum(0) < draws).sum(0), k - 1)
            else:
                labels[chosen] = energy[:, chosen].argmin(0)
        if relearn:
            costs = class_costs(features, labels.ravel(), k).reshape(k, height, width)
        if method == "icm" and np.array_equal(labels, before):
            break
    return labels
