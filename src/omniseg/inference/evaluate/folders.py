"""Folder evaluation: predicted class-index PNGs against ground-truth PNGs, matched by file stem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from omniseg.data.imageio import read_label_png
from omniseg.errors import DataError
from omniseg.metrics import ConfusionMatrix


def label_files(directory: Path) -> dict[str, Path]:
    """The PNG files of ``directory`` by stem (an error if there are none)."""
    if not directory.is_dir():
        raise DataError(f"{directory} is not a folder; pass a folder of PNG masks")
    files = {p.stem: p for p in sorted(directory.glob("*.png"))}
    if not files:
        raise DataError(f"{directory} holds no PNG masks")
    return files


def folder_confusion(pred_dir: str | Path, gt_dir: str | Path, *, num_classes: int | None, ignore_index: int) -> ConfusionMatrix:
    """Confusion matrix of class-index PNGs in ``pred_dir`` against those in ``gt_dir``, matched by stem;
    truth pixels equal to ``ignore_index`` are not counted.

    Without ``num_classes`` it is the largest label seen (other than ``ignore_index``) plus one.
    """
    preds, truths = label_files(Path(pred_dir)), label_files(Path(gt_dir))
    missing = sorted(set(truths) - set(preds))
    if missing:
        raise DataError(f"no prediction for {truths[missing[0]]} ({len(missing)} missing) in {pred_dir}")
    pairs = []
    for stem, truth_path in truths.items():
        truth, pred = read_label_png(truth_path)[0], read_label_png(preds[stem])[0]
        if truth.ndim != 2 or pred.ndim != 2:
            raise DataError(f"{truth_path if truth.ndim != 2 else preds[stem]} is a colour image; pass class-index PNGs")
        if truth.shape != pred.shape:
            raise DataError(
                f"prediction {preds[stem]} is {pred.shape[1]}x{pred.shape[0]} but {truth_path} is "
                f"{truth.shape[1]}x{truth.shape[0]}; predict at the ground truth's size"
            )
        pairs.append((pred.astype(np.int64), truth.astype(np.int64)))
    if num_classes is None:
        seen = np.unique(np.concatenate([np.unique(a) for pair in pairs for a in pair]))
        num_classes = int(seen[seen != ignore_index].max()) + 1
    matrix = ConfusionMatrix(num_classes, ignore_index=ignore_index)
    for (pred, truth), stem in zip(pairs, truths):
        try:
            matrix.update(torch.from_numpy(pred), torch.from_numpy(truth))
        except ValueError as exc:
            raise DataError(f"{stem}.png: {exc}; pass --num-classes or fix the masks") from None
    return matrix


def evaluate_folders(pred_dir: str | Path, gt_dir: str | Path, *, num_classes: int | None = None, ignore_index: int,
                     class_names: list[str] | None = None) -> dict:
    """The metrics report (as ``omniseg eval --pred --gt`` prints it) of the PNGs in ``pred_dir`` against
    ``gt_dir``; classes are named ``class_<i>`` unless ``class_names`` are given."""
    matrix = folder_confusion(pred_dir, gt_dir, num_classes=num_classes, ignore_index=ignore_index)
    names = class_names or [f"class_{i}" for i in range(matrix.num_classes)]
    if len(names) != matrix.num_classes:
        raise DataError(f"{len(names)} class names for {matrix.num_classes} classes; pass one name per class")
    return matrix.report(names)
