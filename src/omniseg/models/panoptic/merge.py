"""The panoptic merge of Panoptic FPN (Kirillov et al., 2019), as detectron2 combines its outputs:
instances first, by score, then stuff in what is left; everything else is void.

- instances below ``score_threshold`` are dropped; each kept instance takes its pixels not yet taken,
  unless more than ``overlap_threshold`` of its mask is already taken (it is then dropped);
- each stuff class of the semantic prediction takes its pixels not yet taken when they number at least
  ``stuff_min_area``; thing classes of the semantic prediction are not used (instances cover things);
- pixels taken by nobody are void (segment id 0).

It works for the outputs of one panoptic model, or of any pair of a semantic and an instance model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def panoptic_merge(semantic: np.ndarray, masks: np.ndarray, labels: Sequence[int], scores: Sequence[float], *,
                   things: Sequence[int], score_threshold: float = 0.5, overlap_threshold: float = 0.5,
                   stuff_min_area: int = 64) -> tuple[np.ndarray, list[dict]]:
    """``(segment ids [H, W] int32, segments_info)`` from a semantic map ``[H, W]`` and instances
    (``masks`` [N, H, W] bool, their ``labels`` and ``scores``); ``segments_info`` entries are
    ``{"id", "category_id", "isthing", "score", "area"}``, ids from 1.

    Example:
        >>> semantic = np.zeros((4, 4), int); semantic[:, 2:] = 2
        >>> person = np.zeros((1, 4, 4), bool); person[0, :2, :2] = True
        >>> ids, info = panoptic_merge(semantic, person, [1], [0.9], things=[1], stuff_min_area=1)
        >>> [(s["category_id"], s["area"]) for s in info]
        [(1, 4), (0, 4), (2, 8)]
    """
    semantic = np.asarray(semantic)
    ids = np.zeros(semantic.shape, np.int32)
    segments: list[dict] = []
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    for index in order:
        if scores[index] < score_threshold:
            continue
        mask = np.asarray(masks[index], bool)
        area = int(mask.sum())
        if area == 0:
            continue
        free = mask & (ids == 0)
        if (area - int(free.sum())) / area > overlap_threshold or not free.any():
            continue
        ids[free] = len(segments) + 1
        segments.append({"id": len(segments) + 1, "category_id": int(labels[index]), "isthing": True,
                         "score": float(scores[index]), "area": int(free.sum())})
    thing_set = set(int(t) for t in things)
    for category in np.unique(semantic).tolist():
        if category in thing_set or category < 0:
            continue
        free = (semantic == category) & (ids == 0)
        if int(free.sum()) < stuff_min_area:
            continue
        ids[free] = len(segments) + 1
        segments.append({"id": len(segments) + 1, "category_id": int(category), "isthing": False, "score": 1.0, "area": int(free.sum())})
    return ids, segments


def merge_prediction(output: dict, things: Sequence[int], *, mask_threshold: float = 0.5, **merge_options) -> tuple[np.ndarray, list[dict]]:
    """A panoptic model's output for one image (``semantic`` probabilities, instance ``masks``, ``labels``,
    ``scores``) merged into ``(segment ids [H, W], segments_info)`` by :func:`panoptic_merge`."""
    semantic = output["semantic"].argmax(0).cpu().numpy()
    masks = (output["masks"][:, 0] >= mask_threshold).cpu().numpy()
    return panoptic_merge(semantic, masks, output["labels"].tolist(), output["scores"].tolist(), things=things, **merge_options)


def segment_masks(ids: np.ndarray, segments: list[dict]) -> tuple[np.ndarray, list[int]]:
    """Panoptic segments as stacked masks ``[S, H, W]`` with their categories."""
    masks = np.stack([ids == s["id"] for s in segments]) if segments else np.zeros((0, *ids.shape), bool)
    return masks, [s["category_id"] for s in segments]


def ids_to_rgb(ids: np.ndarray) -> np.ndarray:
    """Segment ids as COCO panoptic RGB (id = R + 256 G + 256^2 B)."""
    ids = np.asarray(ids, np.int64)
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536 % 256], axis=-1).astype(np.uint8)
