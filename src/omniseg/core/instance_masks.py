"""Instance masks kept as crops: each object's mask cut to its own box, so thousands of objects on a large image
take the memory of their pixels, not N x H x W.

:class:`InstanceMasks` reads like the dense ``[N, H, W]`` bool array it stands for (``len``, ``shape``,
``masks[k]`` -> a dense ``[H, W]`` mask, ``masks[keep]`` -> a subset, ``np.asarray(masks)``), and
:func:`mask_crops` walks either kind as ``(crop, (top, left))`` pairs, which is how writers and overlays should
read them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


class InstanceMasks:
    """``crops[k]`` (bool ``[h, w]``) placed at ``offsets[k]`` (top, left) on an image of ``size`` (H, W)."""

    ndim = 3
    dtype = np.dtype(bool)

    def __init__(self, crops: Sequence[np.ndarray], offsets: Sequence[tuple[int, int]], size: tuple[int, int]) -> None:
        self.crops, self.offsets, self.size = list(crops), [tuple(map(int, o)) for o in offsets], (int(size[0]), int(size[1]))

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.crops), *self.size)

    def __len__(self) -> int:
        return len(self.crops)

    def dense(self, index: int) -> np.ndarray:
        mask = np.zeros(self.size, bool)
        (top, left), crop = self.offsets[index], self.crops[index]
        mask[top:top + crop.shape[0], left:left + crop.shape[1]] = crop
        return mask

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self.dense(int(key) % len(self))
        indices = np.arange(len(self))[key]
        return InstanceMasks([self.crops[i] for i in indices], [self.offsets[i] for i in indices], self.size)

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self.dense(k) for k in range(len(self)))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        stacked = np.zeros(self.shape, bool)
        for k, (crop, (top, left)) in enumerate(zip(self.crops, self.offsets)):
            stacked[k, top:top + crop.shape[0], left:left + crop.shape[1]] = crop
        return stacked if dtype is None else stacked.astype(dtype)


def mask_crops(masks) -> Iterator[tuple[np.ndarray, tuple[int, int]]]:
    """``(crop, (top, left))`` of each mask of dense ``[N, H, W]`` masks or :class:`InstanceMasks`; an empty mask
    gives an empty crop at (0, 0)."""
    if isinstance(masks, InstanceMasks):
        yield from zip(masks.crops, masks.offsets)
        return
    for mask in masks:
        mask = np.asarray(mask, bool)
        rows, columns = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if not len(rows):
            yield mask[:0, :0], (0, 0)
            continue
        yield mask[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1], (int(rows[0]), int(columns[0]))
