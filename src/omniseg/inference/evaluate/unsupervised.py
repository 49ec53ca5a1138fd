"""Unsupervised evaluation: segmentations against the human segmentations of a BSDS folder (PRI, VoI,
covering, boundary precision / recall / F)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from omniseg.data.formats.bsds import read_bsds_truth
from omniseg.data.imageio import pack_rgb, read_label_png
from omniseg.errors import DataError
from omniseg.inference.evaluate.folders import label_files
from omniseg.metrics.boundary import BoundaryCounts
from omniseg.metrics.unsupervised import unsupervised_scores


def bsds_truth_files(gt_path: str | Path) -> dict[str, Path]:
    """The BSDS ground-truth ``.mat`` files under ``gt_path`` (a BSDS root, its ``groundTruth`` folder or one
    split's folder), by stem."""
    gt_path = Path(gt_path)
    if not gt_path.is_dir():
        raise DataError(f"{gt_path} is not a folder; pass a BSDS root or its groundTruth folder")
    files: dict[str, Path] = {}
    for path in sorted(gt_path.rglob("*.mat")):
        if path.stem in files:
            raise DataError(f"{path} and {files[path.stem]} share the name {path.stem}; pass the one split's folder")
        files[path.stem] = path
    if not files:
        raise DataError(f"{gt_path} holds no BSDS ground truth (groundTruth/<split>/*.mat)")
    return files


def read_segmentation_png(path: str | Path) -> np.ndarray:
    """A segmentation PNG as region ids ``[H, W]`` int64: index/16-bit values as they are, colours packed."""
    values = read_label_png(path)[0]
    return pack_rgb(values) if values.ndim == 3 else values.astype(np.int64)


def iter_unsupervised(pred_dir: str | Path, gt_path: str | Path, *, tolerance: float = 0.0075) -> Iterator[tuple[str, dict]]:
    """``(stem, scores)`` for each segmentation PNG in ``pred_dir`` against its BSDS truth (same stem), scores as
    :func:`~omniseg.metrics.unsupervised.unsupervised_scores`. Every prediction must have a truth."""
    preds, truths = label_files(Path(pred_dir)), bsds_truth_files(gt_path)
    missing = [stem for stem in preds if stem not in truths]
    if missing:
        raise DataError(f"no BSDS ground truth named {missing[0]}.mat under {gt_path} for {preds[missing[0]]} "
                        f"({len(missing)} without one); name predictions after their images")
    for stem, path in preds.items():
        segmentations, boundaries = read_bsds_truth(truths[stem])
        segmentation = read_segmentation_png(path)
        if segmentation.shape != segmentations.shape[1:]:
            raise DataError(f"segmentation {path} is {segmentation.shape[1]}x{segmentation.shape[0]} but {truths[stem]} is "
                            f"{segmentations.shape[2]}x{segmentations.shape[1]}; segment the image at its own size")
        yield stem, unsupervised_scores(segmentation, segmentations, boundaries, tolerance=tolerance)


def unsupervised_report(rows: list[tuple[str, dict]]) -> dict:
    """Per-image measures, their means, and boundary precision/recall/F from the counts summed over images."""
    if not rows:
        raise DataError("no segmentations were evaluated")
    images = {stem: {"pri": s["pri"], "voi": s["voi"], "covering": s["covering"], **{f"boundary_{k}": v for k, v in s["boundary"].scores().items()}}
              for stem, s in rows}
    total = BoundaryCounts(*np.sum([s["boundary"] for _, s in rows], 0).tolist())
    means = {key: float(np.mean([values[key] for values in images.values()])) for key in ("pri", "voi", "covering")}
    return {"task": "unsupervised", "images": images, "mean": means, "boundary": {**total.scores(), **total._asdict()}}


def evaluate_unsupervised(pred_dir: str | Path, gt_path: str | Path, *, tolerance: float = 0.0075,
                          progress: Callable[[int, int], None] | None = None) -> dict:
    """The report of :func:`unsupervised_report` for every segmentation PNG in ``pred_dir``;
    ``progress(done, total)`` is called after each image."""
    total = len(label_files(Path(pred_dir)))
    rows = []
    for stem, scores in iter_unsupervised(pred_dir, gt_path, tolerance=tolerance):
        rows.append((stem, scores))
        if progress is not None:
            progress(len(rows), total)
    return unsupervised_report(rows)
