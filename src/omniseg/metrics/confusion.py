"""Semantic segmentation metrics from a streaming confusion matrix.

``matrix[t, p]`` counts pixels of true class ``t`` predicted as ``p``; pixels whose truth is
``ignore_index`` are left out. All metrics derive from it exactly, so streaming over batches (or
summing the matrices of several processes) gives the same numbers as one pass over everything.
When ``ignore_index`` is itself a class id (a void class), predictions of it still count as errors of
the true class, and the void class is left out of the per-class scores and the means (as torchmetrics
does).

A class absent from both truth and prediction has no defined IoU, Dice or accuracy: it is NaN and
left out of the means by default (``absent_score="nan"``); ``absent_score=1`` or ``0`` scores it
instead and keeps it in the means.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch


class ConfusionMatrix:
    """Streaming ``[K, K]`` confusion matrix.

    Example:
        >>> void = 255  # the dataset's unlabelled value, DatasetInfo.ignore_index
        >>> cm = ConfusionMatrix(2, ignore_index=void)
        >>> cm.update(torch.tensor([1, 1, 0, 0]), torch.tensor([1, 1, 1, 1]))
        >>> cm.compute()["per_class_iou"]
        [0.0, 0.5]
    """

    def __init__(self, num_classes: int, *, ignore_index: int | None, absent_score: float | str = "nan"):
        self.num_classes, self.ignore_index = num_classes, ignore_index
        if absent_score not in ("nan", 0, 1, 0.0, 1.0):
            raise ValueError(f"absent_score must be 'nan', 0 or 1, got {absent_score!r}")
        self.absent_score = absent_score
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def reset(self) -> None:
        self.matrix.zero_()

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add ``pred`` and ``target`` class ids of the same shape (any shape).

        Raises ValueError if a target (not ignored) or prediction lies outside ``0..K-1``.
        """
        if pred.shape != target.shape:
            raise ValueError(f"pred shape {tuple(pred.shape)} differs from target shape {tuple(target.shape)}")
        pred, target = pred.reshape(-1).long().cpu(), target.reshape(-1).long().cpu()
        if self.ignore_index is not None:
            keep = target != self.ignore_index
            pred, target = pred[keep], target[keep]
        k = self.num_classes
        for name, values in (("target", target), ("prediction", pred)):
            if values.numel() and (values.min() < 0 or values.max() >= k):
                bad = values[(values < 0) | (values >= k)][0].item()
                raise ValueError(f"{name} label {bad} is outside 0..{k - 1} (ignore_index={self.ignore_index})")
        self.matrix += torch.bincount(target * k + pred, minlength=k * k).reshape(k, k)

    def merge(self, other: ConfusionMatrix) -> None:
        self.matrix += other.matrix

    def compute(self) -> dict[str, Any]:
        return metrics_from_confusion(self.matrix, ignore_index=self.ignore_index, absent_score=self.absent_score)

    def report(self, class_names: list[str]) -> dict[str, Any]:
        """:func:`metrics_report` of this matrix."""
        return metrics_report(self.matrix, class_names, ignore_index=self.ignore_index, absent_score=self.absent_score)


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


def metrics_from_confusion(matrix: torch.Tensor | np.ndarray, *, ignore_index: int | None,
                           absent_score: float | str = "nan") -> dict[str, Any]:
    """Pixel accuracy, mean class accuracy, per-class IoU / Dice / accuracy, mIoU, FWIoU, mean Dice.

    Per class ``c``: ``IoU = TP / (TP + FP + FN)``, ``Dice = 2TP / (2TP + FP + FN)``,
    ``accuracy = TP / (TP + FN)`` (recall). ``FWIoU = sum_c freq_c IoU_c`` with ``freq_c`` the share
    of labelled pixels of class ``c``. ``ignore_index`` (the matrix's, as it was counted) names a void
    class when it is a class id: its scores are NaN and it is in no mean.
    """
    m = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(m)
    support = m.sum(1)  # true pixels per class
    predicted = m.sum(0)
    union = support + predicted - tp
    absent = union == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = tp / union
        dice = 2 * tp / (support + predicted)
        accuracy = tp / support
    fill = math.nan if absent_score == "nan" else float(absent_score)
    iou[absent], dice[absent], accuracy[absent] = fill, fill, fill  # predicted-but-never-true keeps NaN recall
    if ignore_index is not None and 0 <= ignore_index < len(m):  # a void class: never a truth, scored nowhere
        iou[ignore_index] = dice[ignore_index] = accuracy[ignore_index] = math.nan
    total = support.sum()
    freq = support / total if total else np.zeros_like(support)
    return {
        "pixel_accuracy": float(tp.sum() / total) if total else math.nan,
        "mean_accuracy": _nanmean(accuracy),
        "miou": _nanmean(iou),
        "fwiou": float(np.nansum(freq * iou)) if total else math.nan,
        "mean_dice": _nanmean(dice),
        "per_class_iou": iou.tolist(),
        "per_class_dice": dice.tolist(),
        "per_class_accuracy": accuracy.tolist(),
        "support": support.astype(np.int64).tolist(),
    }


def metrics_report(matrix: torch.Tensor | np.ndarray, class_names: list[str], *, ignore_index: int | None,
                   absent_score: float | str = "nan") -> dict[str, Any]:
    """The JSON shape omniseg prints and saves: summary keys plus ``per_class``
    (a list of ``{name, iou, dice, accuracy, support}``). NaN becomes ``None`` (JSON null)."""
    values = metrics_from_confusion(matrix, ignore_index=ignore_index, absent_score=absent_score)

    def clean(x: float) -> float | None:
        return None if isinstance(x, float) and math.isnan(x) else x

    report = {k: clean(values[k]) for k in ("pixel_accuracy", "mean_accuracy", "miou", "fwiou", "mean_dice")}
    report["per_class"] = [
        {
            "name": name,
            "iou": clean(values["per_class_iou"][i]),
            "dice": clean(values["per_class_dice"][i]),
            "accuracy": clean(values["per_class_accuracy"][i]),
            "support": values["support"][i],
        }
        for i, name in enumerate(class_names)
    ]
    return report
