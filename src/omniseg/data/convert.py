"""Conversion between formats: read anything omniseg reads, write folder, COCO, VOC or YOLO; video datasets also DAVIS or
YouTube-VIS."""

from __future__ import annotations

from pathlib import Path

from omniseg.data.formats import load_dataset
from omniseg.data.formats.coco import write_coco
from omniseg.data.formats.davis import write_davis
from omniseg.data.formats.folder import write_folder
from omniseg.data.formats.voc import write_voc
from omniseg.data.formats.yolo import write_yolo
from omniseg.data.formats.youtube_vis import write_youtube_vis
from omniseg.errors import DataError

WRITERS = {"folder": write_folder, "coco": write_coco, "voc": write_voc, "yolo": write_yolo, "davis": write_davis,
           "youtube_vis": write_youtube_vis}  # the last two from video datasets


def convert(source: str | Path, to: str, out: str | Path, *, format: str = "auto", split: float | None = None) -> Path:
    """Read the dataset at ``source`` and write it to ``out`` in the format ``to``.

    The source's own splits are kept; data without splits stays one set of images unless ``split`` (the
    fraction to hold out for validation) asks for a seeded train/val split. ``out`` must not exist yet or be
    empty: conversion never writes over files.

    Example:
        >>> convert("data/labelme", "coco", "data/coco")  # doctest: +SKIP
    """
    if to not in WRITERS:
        raise DataError(f"cannot write format {to!r}; choose one of {', '.join(WRITERS)}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out} already exists and is not empty; choose a new --out folder (nothing is overwritten)")
    if split is not None and not 0 < split < 1:
        raise DataError(f"--split {split} is not a fraction between 0 and 1 (the share of images held out for validation)")
    opened = load_dataset(source, format=format, val_fraction=split or 0.0)
    out.mkdir(parents=True, exist_ok=True)
    return WRITERS[to](opened, out)
