"""COCO run-length encoding of masks (readers, writers and COCO AP share it)."""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils


def encode_rle(mask: np.ndarray) -> dict:
    """A boolean ``[H, W]`` mask as COCO's compressed RLE (``counts`` as text, JSON-ready).

    Example:
        >>> encode_rle(np.array([[0, 1], [1, 1]], bool))["size"]
        [2, 2]
    """
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def coco_bbox(mask: np.ndarray) -> list[int]:
    """COCO's ``[x, y, width, height]`` of a boolean ``[H, W]`` mask (``[0, 0, 0, 0]`` when empty).

    Example:
        >>> coco_bbox(np.array([[0, 1, 1], [0, 1, 0]], bool))
        [1, 0, 2, 2]
    """
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return [0, 0, 0, 0]
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
