"""Sliding-window inference in bounded memory, for images (2D) and volumes (3D) of any size.

Tiles of a fixed size overlap by a fraction; each tile's class probabilities are weighted by a Gaussian
importance map (nnU-Net's: sigma 1/8 of the tile, so a pixel counts most from the tile it is central in) and
summed. Tiles run in batches. The accumulator holds only the band of rows (slabs, for volumes) that tiles still
to come write to: once the next row of tiles starts below a row, that row is finished, is normalised and
arg-maxed (or kept as uint8 probabilities), and is handed on. Memory grows with the width (and height, for a
volume's slab), never with the length along the first axis, and inputs are read band by band (see
:mod:`omniseg.inference.tiling.large_images`).

    >>> starts = tile_starts(1000, 512, 0.5)  # tile rows at 0, 244 and 488: the last one ends at the edge
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from omniseg.core.labels import class_ids

#: ``forward(tiles [B, C, *tile]) -> class probabilities [B, K, *tile]`` (softmax already applied)
Forward = Callable[[torch.Tensor], torch.Tensor]
#: ``read(start, stop) -> [C, stop - start, *rest]``: the input's band along its first spatial axis
BandReader = Callable[[int, int], torch.Tensor]


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Where tiles of ``tile`` pixels start along an axis of ``length``, at least ``overlap`` (0..1) of a tile
    apart from each other, spread evenly so the last ends at the edge (one tile at 0 when the axis is shorter)."""
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if length <= tile:
        return [0]
    step = max(1, int(tile * (1 - overlap)))
    count = math.ceil((length - tile) / step) + 1
    spacing = (length - tile) / (count - 1)
    return [int(round(k * spacing)) for k in range(count)]


def gaussian_importance(shape: Sequence[int], sigma_scale: float = 1 / 8, dtype=torch.float32) -> torch.Tensor:
    """nnU-Net's importance map: a Gaussian centred on the tile with sigma ``sigma_scale`` of each side,
    scaled to a maximum of 1, and floored at its smallest value above 1e-3 of the maximum (no pixel weighs 0)."""
    axes = []
    for side in shape:
        sigma = max(side * sigma_scale, 1e-6)
        position = torch.arange(side, dtype=torch.float64) - (side - 1) / 2
        axes.append(torch.exp(-0.5 * (position / sigma) ** 2))
    weights = axes[0]
    for axis in axes[1:]:
        weights = weights[..., None] * axis
    weights = weights / weights.max()
    floor = weights[weights > 1e-3].min() if (weights > 1e-3).any() else torch.tensor(1.0, dtype=torch.float64)
    return weights.clamp_min(floor).to(dtype)


@dataclass
class WindowPlan:
    """The tiles of an input of spatial ``shape``: ``tile`` (per axis, at most the input's side) and each
    axis' tile starts."""

    shape: tuple[int, ...]
    tile: tuple[int, ...]
    starts: tuple[list[int], ...]

    @classmethod
    def of(cls, shape: Sequence[int], tile: int | Sequence[int], overlap: float) -> WindowPlan:
        shape = tuple(int(s) for s in shape)
        tiles = (tile,) * len(shape) if isinstance(tile, int) else tuple(int(t) for t in tile)
        if len(tiles) != len(shape) or min(tiles) < 1:
            raise ValueError(f"tile {tile} does not fit a {len(shape)}D input")
        if min(shape) < 1:
            raise ValueError(f"the input has an empty side: {shape}")
        tiles = tuple(min(t, s) for t, s in zip(tiles, shape))
        return cls(shape, tiles, tuple(tile_starts(s, t, overlap) for s, t in zip(shape, tiles)))

    @property
    def count(self) -> int:
        return math.prod(len(s) for s in self.starts)


def finished_bands(forward: Forward, read: BandReader, shape: Sequence[int], num_classes: int, *, tile: int | Sequence[int],
                   overlap: float = 0.5, batch_size: int = 4, sigma_scale: float | None = 1 / 8,
                   device: torch.device | str = "cpu", on_tiles: Callable[[int], None] | None = None
                   ) -> Iterator[tuple[int, torch.Tensor]]:
    """Blend the tiles of an input of spatial ``shape`` and yield ``(start, probabilities [K, rows, *rest])`` for
    each band of rows (along the first spatial axis) as soon as no later tile writes to it, top to bottom.

    ``read(start, stop)`` gives the input's rows ``[C, stop - start, *rest]``; ``forward`` maps a batch of tiles to
    class probabilities; ``sigma_scale`` None weighs every pixel of a tile the same (plain averaging).
    ``on_tiles(n)`` is called after each batch of ``n`` tiles (for a progress bar).
    """
    plan = WindowPlan.of(shape, tile, overlap)
    device = torch.device(device)
    weights = (gaussian_importance(plan.tile, sigma_scale) if sigma_scale else torch.ones(plan.tile)).to(device)
    rows, rest = plan.shape[0], plan.shape[1:]
    # the accumulator holds rows [start, start + tile) of the current row of tiles: the rows above it are done
    total = torch.zeros((num_classes, plan.tile[0], *rest), device=device)
    weight_sum = torch.zeros((plan.tile[0], *rest), device=device)
    others = list(np.ndindex(*(len(s) for s in plan.starts[1:])))
    for number, start in enumerate(plan.starts[0]):
        band = read(start, start + plan.tile[0])
        corners = [tuple(plan.starts[axis + 1][k] for axis, k in enumerate(index)) for index in others]
        for first in range(0, len(corners), batch_size):
            chosen = corners[first:first + batch_size]
            windows = [tuple(slice(c, c + t) for c, t in zip(corner, plan.tile[1:])) for corner in chosen]
            tiles = torch.stack([band[(slice(None), slice(None), *window)] for window in windows]).to(device)
            probabilities = forward(tiles)
            for k, window in enumerate(windows):
                total[(slice(None), slice(None), *window)] += probabilities[k] * weights
                weight_sum[(slice(None), *window)] += weights
            if on_tiles is not None:
                on_tiles(len(chosen))
        done = plan.starts[0][number + 1] if number + 1 < len(plan.starts[0]) else rows
        finished = done - start  # no later tile starts above ``done``
        yield start, total[:, :finished] / weight_sum[:finished]
        kept = plan.tile[0] - finished  # rows the next row of tiles adds to
        total[:, :kept] = total[:, finished:].clone()
        weight_sum[:kept] = weight_sum[finished:].clone()
        total[:, kept:] = 0
        weight_sum[kept:] = 0


def sliding_window(forward: Forward, image: torch.Tensor, num_classes: int, *, tile: int | Sequence[int], overlap: float = 0.5,
                   batch_size: int = 4, sigma_scale: float | None = 1 / 8, device: torch.device | str = "cpu",
                   labels: bool = False) -> torch.Tensor:
    """Class probabilities ``[K, *spatial]`` (on the CPU) of an in-memory input ``[C, *spatial]``, tile by tile; with
    ``labels``, class ids ``[*spatial]`` (int64), each band arg-maxed as it finishes, so no probability map of the
    whole input is ever held."""
    spatial = tuple(image.shape[1:])
    out = torch.empty(spatial, dtype=torch.int64) if labels else torch.empty((num_classes, *spatial))
    for start, probabilities in finished_bands(forward, lambda a, b: image[:, a:b], spatial, num_classes, tile=tile, overlap=overlap,
                                               batch_size=batch_size, sigma_scale=sigma_scale, device=device):
        rows = slice(start, start + probabilities.shape[1])
        if labels:
            out[rows] = class_ids(probabilities).cpu()
        else:
            out[:, rows] = probabilities.cpu()
    return out
