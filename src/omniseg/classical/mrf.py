"""Markov random field segmentation with a Potts prior: Gaussian class likelihoods in colour space (started
from k-means) plus ``beta`` for every 4-neighbour with another label, minimised by ICM (Besag, 1986) or
sampled by a Gibbs sampler under simulated annealing (Geman & Geman, 1984).

Both update the pixels of one checkerboard colour at once (their neighbours are all of the other colour,
so a simultaneous update is exact), so a sweep is a few array operations, never a loop over pixels.
"""

from __future__ import annotations

import numpy as np

from omniseg.classical.clustering import kmeans_segmentation, pixel_features


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
                     start_temperature: float = 4.0, end_temperature: float = 0.05, relearn: bool = True, seed: int = 0) -> np.ndarray:
    """Labels ``[H, W]`` int64 in 0..k-1 (ordered by brightness, as k-means's start) of the Potts MRF.

    Args:
        beta: the Potts weight per disagreeing neighbour (0: per-pixel maximum likelihood).
        method: "icm" (each pixel takes its lowest-energy label, sweep after sweep, until nothing changes or
            ``iterations`` sweeps) or "gibbs" (each pixel samples its label from ``exp(-energy / T)`` while
            T falls geometrically from ``start_temperature`` to ``end_temperature`` over ``iterations``
            sweeps; the last sweep takes the lowest-energy labels).
        relearn: re-fit the class Gaussians to the labels after each sweep.
    """
    if method not in ("icm", "gibbs"):
        raise ValueError(f"method must be 'icm' or 'gibbs', got {method!r}")
    image = np.asarray(image)
    rng = np.random.default_rng(seed)
    features = pixel_features(image)
    labels = kmeans_segmentation(image, k, seed=seed)
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
