"""A grid of a dataset's samples with their masks overlaid (``omniseg data show``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from omniseg.core.info import default_palette
from omniseg.errors import DataError
from omniseg.viz.overlay import grey_to_rgb
from omniseg.viz.plots import plot_samples_grid


def show_dataset(source, out: str | Path, *, split: str | None = None, count: int = 8, seed: int = 0,
                 title: str | None = None) -> Path:
    """Draw ``count`` samples (a seeded random choice) of ``split`` (default: the first) of an opened dataset
    (:func:`omniseg.load_dataset`) with their masks and a legend into ``out``: volumes show the middle slice
    of the first channel, BSDS its first annotator's regions. Returns ``out``."""
    if count < 1:
        raise DataError(f"--count must be at least 1, got {count}")
    split = split or source.splits()[0]
    dataset = source.dataset(split)
    chosen = sorted(np.random.default_rng(seed).permutation(len(dataset))[:count].tolist())
    panels, regions = [], False
    for index in chosen:
        sample = dataset[index]
        image, mask = sample["image"].numpy(), sample["mask"].numpy() if "mask" in sample else None
        if source.volumetric:  # the middle slice of the first channel
            middle = image.shape[1] // 2
            image, mask = grey_to_rgb(image[0, middle]), (mask[middle] if mask is not None else None)
        else:  # 2D readers give uint8 RGB
            image = image.transpose(1, 2, 0)
        if mask is None and "segmentations" in sample:  # BSDS: the first annotator's regions
            mask, regions = sample["segmentations"][0].numpy(), True
        panels.append((sample["meta"]["id"], image, mask))
    info = source.info
    palette = default_palette(max(int(p[2].max()) for p in panels if p[2] is not None) + 1) if regions else info.palette
    plot_samples_grid(panels, palette, [] if regions else info.class_names, out, ignore_index=info.ignore_index,
                      title=title or f"{split}, {len(panels)} of {len(dataset)}")
    return Path(out)
