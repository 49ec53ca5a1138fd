"""A dataset's fingerprint: what its images and labels are like, the facts a training plan follows from.

As nnU-Net does for medical volumes, for any dataset omniseg reads: image sizes (and voxel spacing), channels
and bit depth, intensity statistics per channel, class frequencies, object sizes, and whether the classes
have a place in the frame (sky above road) or none (cells, membranes, aerial views).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from omniseg.data.formats import DataSource

MAX_SAMPLES = 64  # images read for the statistics (evenly spaced through the training split)


@dataclass
class Fingerprint:
    """The facts of a dataset that a training plan depends on (:func:`fingerprint` measures them).

    Sizes are ``(H, W)``, or ``(D, H, W)`` for volumes; intensities are of 0..1 pixel values for images and
    of raw values for volumes. ``orientation`` is how much the classes' place depends on the frame's up
    (the total-variation distance between the class histograms of the top and the bottom halves, 0..1), and
    ``mirror`` the same between the left and the right halves.
    """

    volumetric: bool
    num_train: int
    num_val: int
    channels: int
    grey: bool
    bit_depth: int
    size_median: list[int]
    size_min: list[int]
    size_max: list[int]
    intensity_mean: list[float]
    intensity_std: list[float]
    intensity_percentiles: list[list[float]]  # per channel: 0.5, 50, 99.5 %
    class_names: list[str]
    class_frequency: list[float]  # share of the labelled pixels
    class_presence: list[float]  # share of the images holding the class
    orientation: float
    mirror: float
    things: list[int]
    objects_per_image: float | None = None
    object_size: list[float] | None = None  # sqrt(area) of the instances, pixels: 10th, 50th, 90th percentile
    spacing_median: list[float] | None = None
    sampled: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def colour_photographs(self) -> bool:
        """Three distinct 8-bit colour channels: what colour jitter is made for."""
        return not self.volumetric and self.channels == 3 and not self.grey and self.bit_depth == 8


def _sample_indices(length: int, limit: int) -> list[int]:
    return sorted({round(i) for i in np.linspace(0, length - 1, min(length, limit))})


def _tv_distance(a: np.ndarray, b: np.ndarray) -> float:
    if a.sum() == 0 or b.sum() == 0:
        return 0.0
    return float(0.5 * np.abs(a / a.sum() - b / b.sum()).sum())


def fingerprint(source: DataSource, *, max_samples: int = MAX_SAMPLES) -> Fingerprint:
    """Measure ``source``'s fingerprint from up to ``max_samples`` training images (all of them when fewer)."""
    train = source.dataset("train")
    num_val = len(source.dataset("val")) if "val" in source.splits() else 0
    info, volumetric = source.info, source.volumetric
    k = info.num_classes
    sizes, spacings, object_sizes, objects = [], [], [], []
    sums = squares = None
    pixels_seen, grey, high_depth, values = 0, True, False, []
    frequency, presence = np.zeros(k), np.zeros(k)
    halves = np.zeros((4, k))  # top, bottom, left, right
    indices = _sample_indices(len(train), max_samples)
    for index in indices:
        sample = train[index]
        image = sample["image"].as_subclass(torch.Tensor)
        high_depth |= image.dtype != torch.uint8 and not volumetric
        x = image.double() / 255 if image.dtype == torch.uint8 else image.double()
        flat = x.reshape(x.shape[0], -1)
        sums = flat.sum(1) if sums is None else sums + flat.sum(1)
        squares = flat.square().sum(1) if squares is None else squares + flat.square().sum(1)
        pixels_seen += flat.shape[1]
        step = max(1, flat.shape[1] // 20_000)  # a subsample of each image for the percentiles
        values.append(flat[:, ::step].numpy())
        if x.shape[0] == 3 and grey:
            grey = bool(torch.equal(image[0], image[1]) and torch.equal(image[1], image[2]))
        sizes.append(tuple(image.shape[1:]))
        if "spacing" in sample.get("meta", {}):
            spacings.append(sample["meta"]["spacing"])
        if "mask" in sample:
            mask = sample["mask"].as_subclass(torch.Tensor).numpy()
            valid = mask != info.ignore_index
            counts = np.bincount(mask[valid].ravel(), minlength=k)[:k]
            frequency += counts
            presence += counts > 0
            if not volumetric:
                h, w = mask.shape
                for row, part in enumerate((mask[: h // 2], mask[h - h // 2 :], mask[:, : w // 2], mask[:, w - w // 2 :])):
                    halves[row] += np.bincount(part[part != info.ignore_index].ravel(), minlength=k)[:k]
        instances = sample.get("instances")
        if instances is not None:
            areas = instances["masks"].as_subclass(torch.Tensor).flatten(1).sum(1).double()
            object_sizes += areas.sqrt().tolist()
            objects.append(len(areas))
    channels = 1 if grey and sums is not None and len(sums) == 3 else int(len(sums))
    mean = (sums / pixels_seen).numpy()
    std = np.sqrt(np.maximum((squares / pixels_seen).numpy() - mean**2, 0))
    pooled = np.concatenate(values, axis=1)
    percentiles = np.percentile(pooled, [0.5, 50, 99.5], axis=1).T
    if channels == 1 and len(mean) == 3:
        mean, std, percentiles = mean[:1], std[:1], percentiles[:1]
    array = np.array(sizes)
    labelled = frequency.sum()
    return Fingerprint(
        volumetric=volumetric,
        num_train=len(train),
        num_val=num_val,
        channels=channels,
        grey=channels == 1,
        bit_depth=16 if high_depth else (8 if not volumetric else 32),
        size_median=[int(v) for v in np.median(array, axis=0)],
        size_min=[int(v) for v in array.min(0)],
        size_max=[int(v) for v in array.max(0)],
        intensity_mean=[round(float(v), 6) for v in mean],
        intensity_std=[round(float(v), 6) for v in std],
        intensity_percentiles=[[round(float(v), 6) for v in row] for row in percentiles],
        class_names=list(info.class_names),
        class_frequency=[round(float(v), 6) for v in (frequency / labelled if labelled else frequency)],
        class_presence=[round(float(v), 4) for v in presence / len(indices)],
        orientation=round(_tv_distance(halves[0], halves[1]), 4),
        mirror=round(_tv_distance(halves[2], halves[3]), 4),
        things=list(info.things),
        objects_per_image=round(float(np.mean(objects)), 2) if objects else None,
        object_size=[round(float(v), 1) for v in np.percentile(object_sizes, [10, 50, 90])] if object_sizes else None,
        spacing_median=[round(float(v), 4) for v in np.median(np.array(spacings), axis=0)] if spacings else None,
        sampled=len(indices),
    )
