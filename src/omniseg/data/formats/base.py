"""What every on-disk format gives: a DataSource with DatasetInfo, splits and per-split datasets."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from omniseg.data.sample import DatasetInfo, Sample
from omniseg.errors import DataError


class DataSource(Protocol):
    """An opened dataset on disk.

    Attributes:
        info: class names, palette, ignore_index, things/stuff.
        description: how the layout was read (e.g. "folder, palette masks, seeded split").
        volumetric: whether Samples are volumes ``[C, D, H, W]``.
    """

    info: DatasetInfo
    description: str
    volumetric: bool

    def splits(self) -> list[str]:
        """Names of the splits present, e.g. ``["train", "val"]``."""
        ...

    def dataset(self, split: str) -> torch.utils.data.Dataset[Sample]:
        """The Samples of ``split``; raises DataError if the split is missing or empty. The dataset's
        ``path(index)`` names the image file of a Sample without reading it."""
        ...

    def labelled(self, split: str) -> bool:
        """Whether every Sample of ``split`` has a mask (known from the index, no mask is read)."""
        ...

    def class_pixel_stats(self, split: str) -> tuple[np.ndarray, np.ndarray] | None:
        """``(pixels of class c, pixels of the images that contain c)``, each [K], or None if unknown."""
        ...


def override_ignore_index(info: DatasetInfo, ignore_index: int, where: Path | str) -> DatasetInfo:
    """``info`` with another void value (``--ignore-index``); ``where`` names the dataset in errors."""
    try:
        return dataclasses.replace(info, ignore_index=ignore_index)
    except ValueError as exc:
        raise DataError(f"{where}: --ignore-index {ignore_index}: {exc}") from None


def require_instances(source: DataSource, where: Path | str, task: str) -> None:
    """Refuse (naming ``where``) a dataset without instance annotations for ``task`` ("instance", "panoptic")."""
    if source.volumetric or not source.info.things or "instances" not in source.dataset("train")[0]:
        raise DataError(f"{where} has no instance classes (things); {task} training needs objects: COCO, LabelMe, VIA, CVAT, "
                        "YOLO, DSB folders, VOC SegmentationObject, or a folder with instances/")
