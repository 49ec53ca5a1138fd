"""Panoptic quality (Kirillov et al., 2019) with the COCO rules, streaming over images.

For each category, ground-truth and predicted segments match when their IoU exceeds 0.5 (which makes
a match unique). Per category ``PQ = sum(IoU of matches) / (TP + FP / 2 + FN / 2)``, ``SQ = sum(IoU) / TP``,
``RQ = TP / (TP + FP / 2 + FN / 2)``; the means run over the categories that occur (TP + FP + FN > 0),
for all categories, things and stuff. As in the COCO panoptic evaluation:

- void pixels (ground-truth id 0) are left out: a predicted segment's union with a ground-truth segment
  does not count its pixels on void;
- crowd regions (ground-truth segments with ``iscrowd``) are never matched; a predicted segment that is
  not matched is not a false positive when more than half of it lies on void or on a crowd region of its
  own category.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

OFFSET = 1 << 32  # pairs (gt id, pred id) packed in one int64


@dataclass
class Segment:
    category: int
    iscrowd: bool = False


def _as_segments(segments: Mapping[int, int | Segment | tuple]) -> dict[int, Segment]:
    out = {}
    for sid, value in segments.items():
        if isinstance(value, Segment):
            out[int(sid)] = value
        elif isinstance(value, tuple):
            out[int(sid)] = Segment(int(value[0]), bool(value[1]) if len(value) > 1 else False)
        else:
            out[int(sid)] = Segment(int(value))
    return out


class PanopticQuality:
    """Streaming PQ / SQ / RQ.

    Args:
        num_classes: category ids are ``0..num_classes-1``.
        things: the category ids that are things (the rest are stuff).
        class_names: optional names for the per-class report.

    Example:
        >>> pq = PanopticQuality(2, things=[1])
        >>> ids = np.array([[1, 1], [2, 2]])
        >>> pq.update(ids, {1: 0, 2: 1}, ids, {1: 0, 2: 1})
        >>> pq.compute()["all"]["pq"]
        1.0
    """

    def __init__(self, num_classes: int, things: Sequence[int] = (), class_names: Sequence[str] | None = None) -> None:
        self.num_classes, self.things = num_classes, set(int(t) for t in things)
        self.class_names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
        self.reset()

    def reset(self) -> None:
        self.iou = np.zeros(self.num_classes, np.float64)
        self.tp = np.zeros(self.num_classes, np.int64)
        self.fp = np.zeros(self.num_classes, np.int64)
        self.fn = np.zeros(self.num_classes, np.int64)

    def add(self, other: PanopticQuality) -> None:
        """Add the counts of ``other`` (the same classes), e.g. gathered from another process."""
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot add panoptic counts of {other.num_classes} classes to counts of {self.num_classes}")
        self.iou += other.iou
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn

    def update(self, pred_ids: np.ndarray, pred_segments: Mapping, gt_ids: np.ndarray, gt_segments: Mapping) -> None:
        """Add one image: id maps ``[H, W]`` (0 = void / no segment) and their segments
        (``{id: category}``, or ``{id: (category, iscrowd)}`` / :class:`Segment` for the truth)."""
        pred_ids, gt_ids = np.asarray(pred_ids, np.int64), np.asarray(gt_ids, np.int64)
        if pred_ids.shape != gt_ids.shape:
            raise ValueError(f"prediction is {pred_ids.shape} but ground truth is {gt_ids.shape}")
        pred, gt = _as_segments(pred_segments), _as_segments(gt_segments)
        for name, segments, ids in (("prediction", pred, pred_ids), ("ground truth", gt, gt_ids)):
            unknown = set(np.unique(ids).tolist()) - set(segments) - {0}
            if unknown:
                raise ValueError(f"the {name} id map holds segment id {min(unknown)}, which its segments do not list")
            bad = [s.category for s in segments.values() if not 0 <= s.category < self.num_classes]
            if bad:
                raise ValueError(f"{name} category {bad[0]} is outside 0..{self.num_classes - 1}")
        pairs, counts = np.unique(gt_ids * OFFSET + pred_ids, return_counts=True)
        overlap = {(int(p // OFFSET), int(p % OFFSET)): int(c) for p, c in zip(pairs, counts)}
        gt_area, pred_area = {}, {}
        for (g, p), c in overlap.items():
            gt_area[g] = gt_area.get(g, 0) + c
            pred_area[p] = pred_area.get(p, 0) + c
        matched_gt, matched_pred = set(), set()
        for (g, p), inter in overlap.items():
            if g == 0 or p == 0 or g not in gt or p not in pred:
                continue
            if gt[g].iscrowd or gt[g].category != pred[p].category:
                continue
            union = pred_area[p] + gt_area[g] - inter - overlap.get((0, p), 0)
            iou = inter / union
            if iou > 0.5:
                self.tp[gt[g].category] += 1
                self.iou[gt[g].category] += iou
                matched_gt.add(g)
                matched_pred.add(p)
        crowd_of = {}  # category -> crowd segment ids
        for g, seg in gt.items():
            if seg.iscrowd:
                crowd_of.setdefault(seg.category, []).append(g)
            elif g not in matched_gt:
                self.fn[seg.category] += 1
        for p, seg in pred.items():
            if p in matched_pred or pred_area.get(p, 0) == 0:
                continue
            ignored = overlap.get((0, p), 0) + sum(overlap.get((g, p), 0) for g in crowd_of.get(seg.category, []))
            if ignored / pred_area[p] > 0.5:
                continue
            self.fp[seg.category] += 1

    def compute(self) -> dict:
        """``{"all"|"things"|"stuff": {"pq", "sq", "rq", "n"}, "per_class": [...]}`` (values in 0..1)."""
        denominator = self.tp + 0.5 * self.fp + 0.5 * self.fn
        present = (self.tp + self.fp + self.fn) > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            pq = np.where(present, self.iou / np.maximum(denominator, 1e-12), np.nan)
            sq = np.where(self.tp > 0, self.iou / np.maximum(self.tp, 1), np.where(present, 0.0, np.nan))
            rq = np.where(present, self.tp / np.maximum(denominator, 1e-12), np.nan)

        def summary(selected: np.ndarray) -> dict:
            keep = selected & present
            n = int(keep.sum())
            return {k: (float(v[keep].mean()) if n else float("nan")) for k, v in (("pq", pq), ("sq", sq), ("rq", rq))} | {"n": n}

        is_thing = np.array([c in self.things for c in range(self.num_classes)])
        per_class = [{"id": c, "name": self.class_names[c], "isthing": bool(is_thing[c]), "pq": float(pq[c]), "sq": float(sq[c]),
                      "rq": float(rq[c]), "tp": int(self.tp[c]), "fp": int(self.fp[c]), "fn": int(self.fn[c])}
                     for c in range(self.num_classes)]
        return {"all": summary(np.ones(self.num_classes, bool)), "things": summary(is_thing), "stuff": summary(~is_thing),
                "per_class": per_class}


def panoptic_ground_truth(semantic: np.ndarray, masks: np.ndarray, labels: Sequence[int], *, things: Sequence[int],
                          ignore_index: int) -> tuple[np.ndarray, dict[int, Segment]]:
    """The panoptic truth of an image annotated with a class map and instance masks: each instance is a
    segment (painted in order; later ones win on overlap), each stuff class present is one segment, and
    ignored pixels and thing-class pixels that no instance covers are void (id 0).

    Example:
        >>> semantic = np.array([[0, 0, 1, 1]]); masks = np.array([[[0, 0, 1, 1]]], bool)
        >>> void = 255  # the dataset's unlabelled value, DatasetInfo.ignore_index
        >>> ids, segments = panoptic_ground_truth(semantic, masks, [1], things=[1], ignore_index=void)
        >>> ids.tolist(), {k: v.category for k, v in segments.items()}
        ([[2, 2, 1, 1]], {1: 1, 2: 0})
    """
    semantic = np.asarray(semantic)
    ids = np.zeros(semantic.shape, np.int32)
    segments: dict[int, Segment] = {}
    for mask, label in zip(np.asarray(masks, bool), labels):
        if mask.any():
            segments[len(segments) + 1] = Segment(int(label))
            ids[mask] = len(segments)
    thing_set = set(int(t) for t in things)
    for category in np.unique(semantic).tolist():
        if category == ignore_index or category in thing_set:
            continue
        region = (semantic == category) & (ids == 0)
        if region.any():
            segments[len(segments) + 1] = Segment(int(category))
            ids[region] = len(segments)
    return ids, {k: v for k, v in segments.items() if (ids == k).any()}
