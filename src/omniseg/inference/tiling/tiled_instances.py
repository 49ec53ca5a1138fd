"""Instances of images larger than one forward pass: the detector runs tile by tile and the tiles' detections
are merged into one list in image coordinates.

Tiles overlap (see :func:`~omniseg.inference.tiling.sliding_window.tile_starts`), so an object near a seam is seen
by two or more tiles: whole by some, cut by a tile border in others. Two detections of different tiles are the
same object when their masks agree where both tiles see the image (inside the two tiles' common window, most
of the smaller mask lies in the other), or when a piece cut by its tile's border lies in a whole object's box.
An object is kept from the tile that holds it best: detections that touch no inner tile border come
first, by score, and the cut copies of a kept whole object are dropped. An object cut in every tile (larger
than the overlap) is stitched: its cut pieces are joined into one mask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from omniseg.core.instance_masks import InstanceMasks
from omniseg.inference.tiling.sliding_window import tile_starts

#: ``detect(image [C, h, w] uint8) -> {"masks": float [N, 1, h, w] probabilities, "labels", "scores", "boxes"}``
Detect = Callable[[torch.Tensor], dict]


@dataclass
class TileDetection:
    """One detection of one tile, in image coordinates: its mask is cut to the mask's own box ``(y0, x0)``."""

    label: int
    score: float
    box: np.ndarray  # the detector's box, XYXY
    mask: np.ndarray  # bool, the mask's bounding rows and columns only
    offset: tuple[int, int]
    window: tuple[int, int, int, int]  # the tile: y0, x0, y1, x1
    cut: bool  # touches a tile border inside the image

    @property
    def extent(self) -> tuple[int, int, int, int]:
        y0, x0 = self.offset
        return y0, x0, y0 + self.mask.shape[0], x0 + self.mask.shape[1]


def shared_window_overlap(a: TileDetection, b: TileDetection) -> float:
    """How much two detections agree where both of their tiles see the image: the pixels both masks cover
    there over the smaller mask's pixels there (a sliver a tile cut from an object is all inside it)."""
    top, left = max(a.window[0], b.window[0]), max(a.window[1], b.window[1])
    bottom, right = min(a.window[2], b.window[2]), min(a.window[3], b.window[3])
    # only the part of the common window either mask reaches matters
    (ay0, ax0, ay1, ax1), (by0, bx0, by1, bx1) = a.extent, b.extent
    top, left = max(top, min(ay0, by0)), max(left, min(ax0, bx0))
    bottom, right = min(bottom, max(ay1, by1)), min(right, max(ax1, bx1))
    if bottom <= top or right <= left:
        return 0.0
    first, second = _paste(a, top, left, bottom, right), _paste(b, top, left, bottom, right)
    smaller = min(np.count_nonzero(first), np.count_nonzero(second))
    return np.count_nonzero(first & second) / smaller if smaller else 0.0


def _paste(detection: TileDetection, top: int, left: int, bottom: int, right: int) -> np.ndarray:
    """The detection's mask on the rows ``top:bottom`` and columns ``left:right`` of the image."""
    canvas = np.zeros((bottom - top, right - left), bool)
    y0, x0, y1, x1 = detection.extent
    sy0, sx0, sy1, sx1 = max(y0, top), max(x0, left), min(y1, bottom), min(x1, right)
    if sy1 > sy0 and sx1 > sx0:
        canvas[sy0 - top:sy1 - top, sx0 - left:sx1 - left] = detection.mask[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0]
    return canvas


def edge_margin(window: tuple[int, int, int, int]) -> int:
    """How near a tile's border a mask counts as cut by it: 4% of the tile, at least 3 pixels (a detector's
    masks fade and shift by a few pixels where an object leaves its view)."""
    return max(3, round(0.04 * max(window[2] - window[0], window[3] - window[1])))


def same_object(kept: TileDetection, candidate: TileDetection, match_overlap: float) -> bool:
    """Whether ``candidate`` (of another tile) shows the object of ``kept``: their masks agree where both tiles
    see the image, or, for a piece cut by its tile's border, it lies in the box of a whole ``kept`` (the
    detector's mask of a thin sliver is a few pixels off)."""
    if kept.window == candidate.window:
        return False
    if shared_window_overlap(kept, candidate) > match_overlap:
        return True
    if not candidate.cut or kept.cut:
        return False
    grow = edge_margin(kept.window)
    y0, x0, y1, x1 = kept.extent
    inside = _paste(candidate, y0 - grow, x0 - grow, y1 + grow, x1 + grow)
    return np.count_nonzero(inside) > match_overlap * np.count_nonzero(candidate.mask)


def tile_detections(output: dict, window: tuple[int, int, int, int], image_size: tuple[int, int], *,
                    score_threshold: float, mask_threshold: float) -> list[TileDetection]:
    """The detections of one tile (``output`` as from :data:`Detect`) that pass the thresholds, in image
    coordinates, each marked ``cut`` when its mask comes :func:`edge_margin` pixels or nearer to a border of the
    tile that is not the image's."""
    top, left, bottom, right = window
    height, width = image_size
    margin = edge_margin(window)
    detections = []
    for mask, label, score, box in zip(output["masks"], output["labels"], output["scores"], output["boxes"]):
        if score < score_threshold:
            continue
        binary = np.asarray(mask).reshape(mask.shape[-2:]) >= mask_threshold
        rows, columns = np.flatnonzero(binary.any(1)), np.flatnonzero(binary.any(0))
        if not len(rows):
            continue
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, columns[0], columns[-1] + 1
        cut = bool((y0 <= margin and top > 0) or (x0 <= margin and left > 0) or (bottom - top - y1 <= margin and bottom < height)
                   or (right - left - x1 <= margin and right < width))
        detections.append(TileDetection(int(label), float(score), np.asarray(box, np.float32) + [left, top, left, top],
                                        binary[y0:y1, x0:x1], (top + int(y0), left + int(x0)), window, cut))
    return detections


def merge_tile_detections(detections: list[TileDetection], image_size: tuple[int, int], *, match_overlap: float = 0.5) -> dict:
    """One list of instances from the detections of overlapping tiles (see the module's description):
    ``masks`` (:class:`~omniseg.core.instance_masks.InstanceMasks`: reads as bool [N, H, W], held as crops),
    ``labels`` int64, ``scores`` float32, ``boxes`` float32 XYXY, best first.

    A detection is compared only with the objects kept near it (a grid of cells records which objects reach
    which cell), so the merge stays fast with thousands of objects."""
    found: list[list[TileDetection] | None] = []  # the objects kept, each a list of its pieces (None: joined to another)
    near: dict[tuple[int, int], set[int]] = {}
    cell = max(max(d.window[2] - d.window[0], d.window[3] - d.window[1]) for d in detections) if detections else 1

    def cells(detection: TileDetection) -> list[tuple[int, int]]:
        grow = edge_margin(detection.window)
        y0, x0, y1, x1 = detection.extent
        return [(cy, cx) for cy in range((y0 - grow) // cell, (y1 + grow) // cell + 1)
                for cx in range((x0 - grow) // cell, (x1 + grow) // cell + 1)]

    def record(index: int, detection: TileDetection) -> None:
        for key in cells(detection):
            near.setdefault(key, set()).add(index)

    for candidate in sorted(detections, key=lambda d: (d.cut, -d.score)):
        nearby = sorted({i for key in cells(candidate) for i in near.get(key, ()) if found[i] is not None})
        matches = [i for i in nearby if found[i][0].label == candidate.label
                   and any(same_object(member, candidate, match_overlap) for member in found[i])]
        if not matches:
            found.append([candidate])
            record(len(found) - 1, candidate)
        elif all(found[i][0].cut for i in matches):  # no tile holds this object whole: stitch its pieces, joining
            first = matches[0]  # the pieces found apart so far
            for other in matches[1:]:
                for member in found[other]:
                    record(first, member)
                found[first] += found[other]
                found[other] = None
            found[first].append(candidate)
            record(first, candidate)
    groups = [group for group in found if group is not None]
    crops, offsets = [], []
    boxes = np.zeros((len(groups), 4), np.float32)
    for index, group in enumerate(groups):
        extents = np.array([member.extent for member in group])
        top, left, bottom, right = *extents[:, :2].min(0), *extents[:, 2:].max(0)
        crop = np.zeros((bottom - top, right - left), bool)
        for member, (y0, x0, y1, x1) in zip(group, extents):
            crop[y0 - top:y1 - top, x0 - left:x1 - left] |= member.mask
        crops.append(crop)
        offsets.append((int(top), int(left)))
        stacked = np.stack([member.box for member in group])
        boxes[index] = [*stacked[:, :2].min(0), *stacked[:, 2:].max(0)]
    scores = np.array([group[0].score for group in groups], np.float32)
    order = np.argsort(-scores, kind="stable")
    return {"masks": InstanceMasks(crops, offsets, image_size)[order], "labels": np.array([g[0].label for g in groups], np.int64)[order],
            "scores": scores[order], "boxes": boxes[order]}


def tiled_instances(detect: Detect, image: torch.Tensor, *, tile: int, overlap: float = 0.5, score_threshold: float = 0.5,
                    mask_threshold: float = 0.5, match_overlap: float = 0.5) -> dict:
    """Instances of an image ``[C, H, W]`` detected tile by tile (``tile`` pixels, ``overlap`` of a tile) and
    merged: see :func:`merge_tile_detections`."""
    height, width = image.shape[-2:]
    detections = []
    for top in tile_starts(height, tile, overlap):
        for left in tile_starts(width, tile, overlap):
            window = (top, left, min(top + tile, height), min(left + tile, width))
            output = detect(image[:, window[0]:window[2], window[1]:window[3]])
            detections += tile_detections(output, window, (height, width), score_threshold=score_threshold,
                                          mask_threshold=mask_threshold)
    return merge_tile_detections(detections, (height, width), match_overlap=match_overlap)
