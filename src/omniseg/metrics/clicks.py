"""Interactive segmentation measured in clicks: the standard click simulator and the number of clicks (NoC).

The simulator plays a person correcting a mask, as the interactive-segmentation literature does (Xu et al.
2016; the protocol of RITM, SimpleClick and SAM's evaluations): each click goes into the larger of the two error
regions, false negatives (a positive click) or false positives (a negative click), at the pixel farthest from
that region's boundary (the image border counts as boundary). ``NoC@85`` is the number of clicks a model needs to
reach 85% IoU with the object; an object never reached within the click limit counts as the limit (20), as the
literature counts it.

    >>> truth = np.zeros((9, 9), bool); truth[2:7, 2:7] = True
    >>> next_click(np.zeros_like(truth), truth)
    Click(y=4, x=4, positive=True)
    >>> clicks_to_reach([0.5, 0.86, 0.92], 0.85), clicks_to_reach([0.5, 0.6], 0.9, max_clicks=20)
    (2, 20)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class Click:
    """A click at row ``y``, column ``x``: on the object (``positive``) or on the background."""

    y: int
    x: int
    positive: bool


def _depth(region: np.ndarray) -> np.ndarray:
    """Each pixel's distance to the nearest pixel outside ``region``, the image border counting as outside."""
    return ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]


def next_click(prediction: np.ndarray, truth: np.ndarray, *, ignore: np.ndarray | None = None) -> Click:
    """The simulated person's next click on a ``prediction`` of the object ``truth`` (bool [H, W]; ``ignore``
    marks pixels that count as neither): in the larger error region, at its deepest pixel (the first such pixel
    in raster order on ties; a negative click when both regions are as deep). A prediction equal to the truth gets a positive click at the object's deepest
    pixel (there is nothing to correct; simulators stop before that)."""
    prediction, truth = np.asarray(prediction, bool), np.asarray(truth, bool)
    if prediction.shape != truth.shape:
        raise ValueError(f"the prediction {prediction.shape} and the object {truth.shape} differ in size")
    valid = ~np.asarray(ignore, bool) if ignore is not None else np.ones_like(truth)
    missed, extra = _depth(truth & ~prediction & valid), _depth(prediction & ~truth & valid)
    if missed.max(initial=0) == 0 and extra.max(initial=0) == 0:
        missed = _depth(truth)
    positive = bool(missed.max(initial=0) > extra.max(initial=0))  # a tie goes to a negative click, as RITM
    depth = missed if positive else extra
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return Click(int(y), int(x), positive)


def mask_iou(prediction: np.ndarray, truth: np.ndarray, *, ignore: np.ndarray | None = None) -> float:
    """IoU of two bool masks (pixels under ``ignore`` left out); 1 when both are empty."""
    prediction, truth = np.asarray(prediction, bool), np.asarray(truth, bool)
    if ignore is not None:
        prediction, truth = prediction & ~ignore, truth & ~ignore
    union = np.count_nonzero(prediction | truth)
    return np.count_nonzero(prediction & truth) / union if union else 1.0


def simulate_clicks(predict: Callable[[list[Click]], np.ndarray], truth: np.ndarray, *, max_clicks: int = 20,
                    ignore: np.ndarray | None = None, stop_at: float | None = None, min_clicks: int = 0
                    ) -> tuple[list[float], list[Click]]:
    """Click an object ``truth`` up to ``max_clicks`` times: each click is :func:`next_click` on the last
    prediction (none before the first), ``predict(clicks so far)`` gives the next mask. Returns the IoU after
    each click and the clicks; with ``stop_at``, stops once the IoU reaches it after at least ``min_clicks``
    clicks (:func:`click_metrics` takes the last IoU for the clicks not made)."""
    prediction = np.zeros(np.shape(truth), bool)
    clicks: list[Click] = []
    ious: list[float] = []
    for _ in range(max_clicks):
        clicks.append(next_click(prediction, truth, ignore=ignore))
        prediction = np.asarray(predict(list(clicks)), bool)
        ious.append(mask_iou(prediction, truth, ignore=ignore))
        if stop_at is not None and ious[-1] >= stop_at and len(ious) >= min_clicks:
            break
    return ious, clicks


def clicks_to_reach(ious: Sequence[float], threshold: float, *, max_clicks: int = 20) -> int:
    """The number of clicks after which the IoU first reaches ``threshold``; ``max_clicks`` when it never does."""
    return next((k for k, iou in enumerate(ious[:max_clicks], 1) if iou >= threshold), max_clicks)


def filled_curves(curves: Sequence[Sequence[float]], max_clicks: int = 20) -> list[list[float]]:
    """Each IoU curve made ``max_clicks`` long: a curve stopped early keeps its last IoU (an empty one is 0)."""
    return [list(c[:max_clicks]) + [c[-1]] * (max_clicks - len(c)) if len(c) else [0.0] * max_clicks for c in curves]


def mean_curve(curves: Sequence[Sequence[float]], *, max_clicks: int = 20) -> list[float]:
    """The mean IoU after 1, 2, ... ``max_clicks`` clicks over the objects' curves (:func:`filled_curves`)."""
    return np.mean(filled_curves(curves, max_clicks), axis=0).tolist() if len(curves) else []


def click_metrics(curves: Sequence[Sequence[float]], *, at: Sequence[int] = (1, 3, 5), thresholds: Sequence[float] = (0.85, 0.9),
                  max_clicks: int = 20) -> dict[str, float]:
    """The interactive-segmentation table of many objects' IoU curves (one list of IoUs after 1, 2, ... clicks
    each; a curve stopped early keeps its last IoU): ``mIoU@k`` (mean IoU after k clicks), ``NoC@85`` /
    ``NoC@90`` (mean clicks to reach the threshold, never-reached objects counting ``max_clicks``) and
    ``NoF@85`` / ``NoF@90`` (objects never reached), plus ``objects``."""
    if not curves:
        raise ValueError("no objects were clicked: the metrics need at least one")
    filled = filled_curves(curves, max_clicks)
    table: dict[str, float] = {"objects": float(len(curves))}
    for k in (k for k in at if k <= max_clicks):  # a limit under k clicks has no mIoU@k
        table[f"mIoU@{k}"] = float(np.mean([c[k - 1] for c in filled]))
    for threshold in thresholds:
        name = f"{round(threshold * 100):d}"
        needed = [clicks_to_reach(c, threshold, max_clicks=max_clicks) for c in filled]
        table[f"NoC@{name}"] = float(np.mean(needed))
        table[f"NoF@{name}"] = float(sum(max(c[:max_clicks]) < threshold for c in filled))
    return table
