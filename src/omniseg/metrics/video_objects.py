"""DAVIS video object segmentation measures: region similarity J (mask IoU) and boundary accuracy F (the F-measure of
the two outlines, matched within a tolerance of 0.008 of the image diagonal), each as mean, recall (share of frames
above 0.5) and decay (the mean of the first quarter of the video minus that of the last), and J&F, their mean.

Semi-supervised results name their objects as the truth does (``match="ids"``); unsupervised ones are matched to the
truth objects once per video, by the Hungarian assignment on mean J (``match="assignment"``), unmatched truths
scoring 0. Videos are combined over all their objects, as DAVIS does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from omniseg.metrics.clicks import mask_iou

TOLERANCE = 0.008


def region_similarity(prediction: np.ndarray, truth: np.ndarray) -> float:
    """J: the IoU of two masks; 1 when both are empty (the click metrics' IoU)."""
    return mask_iou(np.asarray(prediction, bool), np.asarray(truth, bool))


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """The outline of a mask one pixel wide: pixels whose right, lower or lower-right neighbour differs (the outline
    sits half a pixel towards the origin, as in the BSDS / DAVIS code)."""
    mask = np.asarray(mask, bool)
    east, south, south_east = np.zeros_like(mask), np.zeros_like(mask), np.zeros_like(mask)
    east[:, :-1], south[:-1, :], south_east[:-1, :-1] = mask[:, 1:], mask[1:, :], mask[1:, 1:]
    outline = (mask ^ east) | (mask ^ south) | (mask ^ south_east)
    outline[-1, :] = mask[-1, :] ^ east[-1, :]
    outline[:, -1] = mask[:, -1] ^ south[:, -1]
    outline[-1, -1] = False
    return outline


def _disk(radius: int) -> np.ndarray:
    ys, xs = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return xs ** 2 + ys ** 2 <= radius ** 2


def boundary_accuracy(prediction: np.ndarray, truth: np.ndarray, *, tolerance: float = TOLERANCE) -> float:
    """F: the F-measure of the outlines of two masks, a pixel of one matching when the other's outline passes within
    ``ceil(tolerance * diagonal)`` pixels (``tolerance`` >= 1: that many pixels). Both outlines empty: 1."""
    prediction, truth = np.asarray(prediction, bool), np.asarray(truth, bool)
    radius = int(tolerance if tolerance >= 1 else np.ceil(tolerance * np.hypot(*prediction.shape)))
    predicted_outline, true_outline = boundary_map(prediction), boundary_map(truth)
    n_pred, n_true = np.count_nonzero(predicted_outline), np.count_nonzero(true_outline)
    if n_pred == 0 or n_true == 0:
        precision, recall = (1.0 if n_pred == 0 else 0.0), (1.0 if n_true == 0 else 0.0)
    else:
        disk = _disk(radius)
        precision = np.count_nonzero(predicted_outline & ndimage.binary_dilation(true_outline, disk)) / n_pred
        recall = np.count_nonzero(true_outline & ndimage.binary_dilation(predicted_outline, disk)) / n_true
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _statistics(values: np.ndarray) -> tuple[float, float, float]:
    """(mean, recall, decay) of one object's per-frame values."""
    count = len(values)
    edges = (np.round(np.linspace(1, count, 5) + 1e-10) - 1).astype(int)
    bins = [values[edges[i]: edges[i + 1] + 1] for i in range(4)]
    return float(np.mean(values)), float(np.mean(values > 0.5 + np.finfo(float).eps)), float(np.mean(bins[0]) - np.mean(bins[3]))


class VideoObjectScores:
    """J and F of every truth object in every frame of one video. Fill with :meth:`add_frame` (label images, pixel
    value = object id) or :meth:`add_masks`; the first call's truth objects, and any later one, are the objects."""

    def __init__(self, *, match: str = "ids", tolerance: float = TOLERANCE) -> None:
        if match not in ("ids", "assignment"):
            raise ValueError(f"match is 'ids' (semi-supervised) or 'assignment' (unsupervised), not {match!r}")
        self.match, self.tolerance = match, tolerance
        self.frames: list[tuple[dict, dict]] = []  # per frame: J, F of each pair present, and of each object alone

    def add_masks(self, truths: dict[int, np.ndarray], predictions: dict[int, np.ndarray]) -> None:
        """One frame: ``{object id: mask}`` of the truth and of the prediction (absent = empty). Only J and F of each
        pair present (and of each object against nothing) are kept: the masks are let go."""
        truths = {int(k): np.asarray(v, bool) for k, v in truths.items()}
        predictions = {int(k): np.asarray(v, bool) for k, v in predictions.items()}
        pairs = {(t, p): self._pair(a, b) for t, b in truths.items() for p, a in predictions.items()}
        alone = {("t", t): self._pair(np.zeros_like(b), b) for t, b in truths.items()}
        alone |= {("p", p): self._pair(a, np.zeros_like(a)) for p, a in predictions.items()}
        self.frames.append((pairs, alone))

    def _pair(self, prediction: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
        return region_similarity(prediction, truth), boundary_accuracy(prediction, truth, tolerance=self.tolerance)

    def add_frame(self, truth: np.ndarray, prediction: np.ndarray, *, background: int = 0) -> None:
        self.add_masks({int(i): truth == i for i in np.unique(truth) if i != background},
                       {int(i): prediction == i for i in np.unique(prediction) if i != background})

    def _scores(self, t: int, p: int | None) -> tuple[np.ndarray, np.ndarray]:
        """J and F per frame of truth ``t`` against prediction ``p`` (None: against nothing)."""
        values = []
        for pairs, alone in self.frames:
            if (t, p) in pairs:
                values.append(pairs[(t, p)])
            elif ("t", t) in alone:
                values.append(alone[("t", t)])
            elif ("p", p) in alone:
                values.append(alone[("p", p)])
            else:  # neither there: both empty agree
                values.append((1.0, 1.0))
        array = np.array(values).reshape(-1, 2)
        return array[:, 0], array[:, 1]

    def truth_ids(self) -> list[int]:
        return sorted({key[1] for _, alone in self.frames for key in alone if key[0] == "t"})

    def per_object(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """``{truth id: (J per frame, F per frame)}``."""
        truth_ids = self.truth_ids()
        if self.match == "ids":
            return {t: self._scores(t, t) for t in truth_ids}
        predicted_ids = sorted({key[1] for _, alone in self.frames for key in alone if key[0] == "p"})
        mean_j = np.array([[self._scores(t, p)[0].mean() for p in predicted_ids] for t in truth_ids]).reshape(len(truth_ids), len(predicted_ids))
        rows, cols = linear_sum_assignment(-mean_j)
        chosen = {truth_ids[r]: predicted_ids[c] for r, c in zip(rows, cols)}
        zeros = np.zeros(len(self.frames))
        return {t: self._scores(t, chosen[t]) if t in chosen else (zeros, zeros) for t in truth_ids}


def video_object_scores(videos: Sequence[VideoObjectScores]) -> dict[str, float]:
    """J&F, J (mean, recall, decay) and F (mean, recall, decay) over every object of ``videos``."""
    rows = [(*_statistics(j), *_statistics(f)) for video in videos for j, f in video.per_object().values()]
    if not rows:
        raise ValueError("no truth objects in these videos: J&F needs at least one")
    mean = np.mean(np.array(rows), axis=0)
    names = ("J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
    scores = {name: float(v) for name, v in zip(names, mean)}
    return {"J&F": (scores["J-Mean"] + scores["F-Mean"]) / 2} | scores | {"objects": len(rows)}
