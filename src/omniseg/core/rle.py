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
