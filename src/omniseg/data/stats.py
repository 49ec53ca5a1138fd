"""Dataset statistics behind ``omniseg data stats``: class frequencies, median-frequency weights, image sizes."""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch

from omniseg.core.class_balance import median_frequency_weights
from omniseg.data.imageio import verify_image


def image_sizes(source, split: str) -> Counter:
    """``Counter`` of (H, W) (volumes: (D, H, W)) over a split, from file headers where the index has paths."""
    dataset = source.dataset(split)
    if source.volumetric:
        return Counter(tuple(case.shape) for case in dataset.cases)
    return Counter(verify_image(dataset.path(index)) for index in range(len(dataset)))


def dataset_stats(source) -> dict:
    """Counts per split; per class pixels, frequency and median-frequency weight (over the labelled
    splits); the image sizes per split. Masks are read one at a time."""
    info = source.info
    pixels = np.zeros(info.num_classes, np.int64)
    image_pixels = np.zeros(info.num_classes, np.int64)
    splits = {}
    for split in source.splits():
        stats = source.class_pixel_stats(split) if source.labelled(split) else None
        if stats is not None:
            pixels += stats[0]
            image_pixels += stats[1]
        sizes = image_sizes(source, split)
        splits[split] = {"images": sum(sizes.values()), "labelled": stats is not None,
                         "sizes": [{"size": list(size), "count": count} for size, count in sizes.most_common()]}
    weights = median_frequency_weights(torch.from_numpy(pixels), torch.from_numpy(image_pixels)).tolist()
    total = max(int(pixels.sum()), 1)
    classes = [{"id": c, "name": info.class_names[c], "pixels": int(pixels[c]), "frequency": float(pixels[c] / total),
                "median_frequency_weight": float(weights[c])} for c in range(info.num_classes)]
    return {"format": getattr(source, "name", ""), "description": source.description, "splits": splits, "classes": classes}
