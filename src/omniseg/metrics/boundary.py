"""Boundary precision, recall and F-measure with the BSDS protocol (Martin et al., 2004; Arbelaez et al., 2011).

A predicted boundary pixel is correct when it is matched to a boundary pixel of a human segmentation no
farther than ``tolerance`` x the image diagonal (0.0075 in the benchmark: 4.3 px on a 481 x 321 image),
each pixel matched at most once (a maximum one-to-one matching, per annotator). Over several annotators,
a predicted pixel counts once if any annotator's matching takes it (precision), and every annotator's
matched pixels count towards recall. Counts are summed before dividing: over annotators for one image,
over images for a dataset (ODS), or per image's best setting (OIS) in a parameter sweep.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
from skimage.morphology import thin

from omniseg.core.boundaries import label_boundaries


class BoundaryCounts(NamedTuple):
    """The four sums behind precision and recall (add them across images before dividing)."""

    matched_prediction: int
    prediction: int
    matched_truth: int
    truth: int

    @property
    def precision(self) -> float:
        return self.matched_prediction / self.prediction if self.prediction else 0.0

    @property
    def recall(self) -> float:
        return self.matched_truth / self.truth if self.truth else 0.0

    @property
    def f(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0

    def scores(self) -> dict[str, float]:
        return {"precision": self.precision, "recall": self.recall, "f": self.f}


def _disk_offsets(radius: float) -> np.ndarray:
    reach = int(np.floor(radius))
    rows, columns = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    inside = rows**2 + columns**2 <= radius**2
    return np.stack([rows[inside], columns[inside]], 1)


def match_boundaries(prediction: np.ndarray, truth: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """``(matched prediction [H, W] bool, matched truth [H, W] bool)``: a maximum one-to-one matching of the two
    boundary maps' pixels, pairs no farther apart than ``radius`` pixels (nearest pairs taken greedily first,
    then completed by Hopcroft-Karp augmenting paths, so the count is the maximum)."""
    prediction, truth = np.asarray(prediction, bool), np.asarray(truth, bool)
    points, truth_points = np.argwhere(prediction), np.argwhere(truth)
    matched_prediction, matched_truth = np.zeros(prediction.shape, bool), np.zeros(truth.shape, bool)
    if not len(points) or not len(truth_points):
        return matched_prediction, matched_truth
    truth_index = np.full(truth.shape, -1, np.int64)
    truth_index[truth] = np.arange(len(truth_points))
    offsets = _disk_offsets(radius)
    offsets = offsets[np.argsort((offsets**2).sum(1), kind="stable")]  # nearest first
    rows, columns = points[:, None, 0] + offsets[None, :, 0], points[:, None, 1] + offsets[None, :, 1]
    inside = (rows >= 0) & (rows < truth.shape[0]) & (columns >= 0) & (columns < truth.shape[1])
    candidates = np.where(inside, truth_index[rows.clip(0, truth.shape[0] - 1), columns.clip(0, truth.shape[1] - 1)], -1)
    partner = _maximum_matching(candidates, len(truth_points))
    taken = partner >= 0
    matched_prediction[tuple(points[taken].T)] = True
    matched_truth[tuple(truth_points[partner[taken]].T)] = True
    return matched_prediction, matched_truth


def _maximum_matching(candidates: np.ndarray, right_count: int) -> np.ndarray:
    """Per left vertex, its matched right vertex or -1, in a maximum matching of the bipartite graph whose row i
    lists left vertex i's neighbours (-1: none), nearest first. (scipy's Hopcroft-Karp can take minutes on
    boundary graphs, so this one starts from a greedy nearest-pair matching, which leaves few augmentations.)"""
    adjacency = [row[row >= 0].tolist() for row in candidates]
    match_left, match_right = [-1] * len(adjacency), [-1] * right_count
    for slot in range(candidates.shape[1]):  # greedy: every left vertex's nearest free neighbour, ring by ring
        for left in np.flatnonzero(candidates[:, slot] >= 0).tolist():
            right = int(candidates[left, slot])
            if match_left[left] < 0 and match_right[right] < 0:
                match_left[left], match_right[right] = right, left
    while True:  # Hopcroft-Karp phases: layers by BFS from the free left vertices, then disjoint augmenting paths
        layer = [-1] * len(adjacency)
        queue = [left for left, right in enumerate(match_left) if right < 0 and adjacency[left]]
        for left in queue:
            layer[left] = 0
        found, head = False, 0
        while head < len(queue):
            left = queue[head]
            head += 1
            for right in adjacency[left]:
                owner = match_right[right]
                if owner < 0:
                    found = True
                elif layer[owner] < 0:
                    layer[owner] = layer[left] + 1
                    queue.append(owner)
        if not found:
            break
        cursor = [0] * len(adjacency)
        for root in [left for left, right in enumerate(match_left) if right < 0 and layer[left] == 0]:
            lefts, rights = [root], []
            while lefts:
                left = lefts[-1]
                if cursor[left] == len(adjacency[left]):  # dead end: never try it again this phase
                    layer[left] = -1
                    lefts.pop()
                    if rights:
                        rights.pop()
                    continue
                right = adjacency[left][cursor[left]]
                cursor[left] += 1
                owner = match_right[right]
                if owner < 0:  # augment along the path
                    for l, r in zip(lefts, rights + [right]):
                        match_left[l], match_right[r] = r, l
                    break
                if layer[owner] == layer[left] + 1:
                    lefts.append(owner)
                    rights.append(right)
    return np.array(match_left, np.int64)


def boundary_counts(prediction: np.ndarray, truths: Sequence[np.ndarray] | np.ndarray, *, tolerance: float = 0.0075,
                    thin_prediction: bool = True) -> BoundaryCounts:
    """The BSDS boundary counts of one predicted boundary map ``[H, W]`` (bool; a label map's boundaries come from
    :func:`label_boundaries`) against one or several human boundary maps (``[H, W]`` or ``[A, H, W]``).
    ``thin_prediction`` thins the prediction to one pixel first, as the benchmark does."""
    prediction = np.asarray(prediction, bool)
    truths = np.asarray(truths, bool)
    truths = truths[None] if truths.ndim == 2 else truths
    if truths.ndim != 3 or truths.shape[1:] != prediction.shape or not len(truths):
        raise ValueError(f"truth boundaries {truths.shape} do not match the prediction {prediction.shape}; pass [H, W] or [A, H, W]")
    prediction = thin(prediction) if thin_prediction else prediction
    radius = tolerance * float(np.hypot(*prediction.shape))
    matched_any = np.zeros(prediction.shape, bool)
    matched_truth = truth_total = 0
    for truth in truths:
        matched, truth_matched = match_boundaries(prediction, truth, radius)
        matched_any |= matched
        matched_truth += int(truth_matched.sum())
        truth_total += int(truth.sum())
    return BoundaryCounts(int(matched_any.sum()), int(prediction.sum()), matched_truth, truth_total)


def boundary_scores(segmentation: np.ndarray, truths: Sequence[np.ndarray] | np.ndarray, *, tolerance: float = 0.0075) -> dict[str, float]:
    """``{"precision", "recall", "f"}`` of a label map's boundaries against the human boundary maps."""
    return boundary_counts(label_boundaries(segmentation), truths, tolerance=tolerance).scores()


def optimal_boundary_scores(counts: np.ndarray) -> dict[str, dict[str, float]]:
    """ODS and OIS of a parameter sweep. ``counts`` is ``[S settings, N images, 4]`` (the :class:`BoundaryCounts`
    fields). ODS: the one setting whose counts summed over images give the best F. OIS: each image's best
    setting, their counts summed. Returns ``{"ods": {precision, recall, f, setting}, "ois": {precision, recall, f}}``."""
    counts = np.asarray(counts, np.int64)
    if counts.ndim != 3 or counts.shape[2] != 4 or not counts.shape[0] or not counts.shape[1]:
        raise ValueError(f"counts must be [settings, images, 4] with at least one of each, got {counts.shape}")
    dataset = [BoundaryCounts(*map(int, row)) for row in counts.sum(1)]
    best = int(np.argmax([c.f for c in dataset]))
    per_image = np.array([[BoundaryCounts(*map(int, c)).f for c in setting] for setting in counts])  # [S, N]
    chosen = counts[per_image.argmax(0), np.arange(counts.shape[1])].sum(0)
    return {"ods": {**dataset[best].scores(), "setting": best}, "ois": BoundaryCounts(*map(int, chosen)).scores()}


def optimal_region_scores(scores: np.ndarray, *, higher_is_better: bool = True) -> dict[str, float]:
    """ODS and OIS of a per-image region measure (PRI, covering; VoI with ``higher_is_better=False``) over a
    sweep ``[S settings, N images]``: the best dataset mean of one setting, and the mean of each image's best."""
    scores = np.asarray(scores, np.float64)
    if scores.ndim != 2 or not scores.size:
        raise ValueError(f"scores must be [settings, images], got {scores.shape}")
    pick = np.max if higher_is_better else np.min
    means = scores.mean(1)
    best = int(np.argmax(means) if higher_is_better else np.argmin(means))
    return {"ods": float(means[best]), "ods_setting": best, "ois": float(pick(scores, 0).mean())}
