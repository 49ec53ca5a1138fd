"""What every on-disk format gives: a DataSource with DatasetInfo, splits and per-split datasets."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from omniseg.data.sample import DatasetInfo, Sample
from omniseg.errors import DataError, OmnisegError


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


@contextmanager
def reading(path: Path | str, what: str = "") -> Iterator[None]:
    """What a malformed annotation file makes the code around it raise (a value of another type, a missing key,
    a number out of range) as one :class:`DataError` naming ``path`` (and ``what`` in it)."""
    try:
        yield
    except OmnisegError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError, ZeroDivisionError, RecursionError) as exc:
        detail = f"missing key {exc.args[0]!r}" if isinstance(exc, KeyError) else (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise DataError(f"{path}{f': {what}' if what else ''} is malformed: {detail}; fix the file or export it again") from None


def read_text(path: Path) -> str:
    """A UTF-8 text file, or a :class:`DataError` naming it."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise DataError(f"{path} cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8") from None


def read_json(path: Path) -> Any:
    """The value a JSON file holds, or a :class:`DataError` naming it."""
    try:
        return json.loads(read_text(path))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise DataError(f"{path} is not valid JSON ({str(exc)[:120]}); fix the file or export it again") from None


def read_yaml(path: Path) -> Any:
    """The value a YAML file holds (``yaml.safe_load``: plain data only), or a :class:`DataError` naming it."""
    import yaml

    try:
        return yaml.safe_load(read_text(path))
    except (yaml.YAMLError, RecursionError) as exc:
        raise DataError(f"{path} is not valid YAML ({str(exc).splitlines()[0][:120]}); fix the file") from None
