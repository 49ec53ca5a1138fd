"""Evaluating a model on a dataset split, prediction PNGs against ground-truth PNGs, or segmentations against
BSDS human segmentations (the unsupervised region and boundary measures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from omniseg.config import load_config
from omniseg.data.formats import load_dataset
from omniseg.data.formats.bsds import read_bsds_truth
from omniseg.data.imageio import pack_rgb, read_label_png
from omniseg.data.transforms import InstanceTransform, PadCollate, TransformedDataset, collate_instances, eval_transforms_for
from omniseg.errors import ConfigError, DataError
from omniseg.data.sample import DatasetInfo
from omniseg.metrics import ConfusionMatrix, coco_evaluate_all, coco_records, metrics_report
from omniseg.metrics.boundary import BoundaryCounts
from omniseg.metrics.unsupervised import unsupervised_scores
from omniseg.metrics.panoptic import PanopticQuality, panoptic_ground_truth
from omniseg.models.hub import load_model
from omniseg.models.panoptic.merge import merge_prediction
from omniseg.models.semantic.base import is_volumetric


@torch.inference_mode()
def evaluate_model(
    model: nn.Module,
    dataset: torch.utils.data.Dataset,
    *,
    num_classes: int,
    ignore_index: int = 255,
    batch_size: int = 4,
    num_workers: int = 0,
    device: str | torch.device = "cpu",
) -> ConfusionMatrix:
    """Confusion matrix of ``model`` over a dataset of already-normalised Samples with masks."""
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=PadCollate(ignore_index)
    )
    matrix = ConfusionMatrix(num_classes, ignore_index=ignore_index)
    model = model.eval().to(device)
    for batch in loader:
        if "mask" not in batch:
            raise DataError("the split has images without masks; evaluation needs ground truth")
        pred = model(batch["image"].to(device)).argmax(1).cpu()
        matrix.update(pred, batch["mask"])
    return matrix


def check_dimensions(model: nn.Module, source, data: str | Path, name: str = "the model") -> None:
    """Refuse a 2D model on volumes or a 3D model on images, before any work is done."""
    model_3d, data_3d = is_volumetric(model), source.volumetric
    if model_3d != data_3d:
        raise ConfigError(
            f"{name} takes {'volumes [N, C, D, H, W]' if model_3d else 'images [N, C, H, W]'} but {data} holds "
            f"{'volumes' if data_3d else '2D images'}; choose a {'volumetric (vnet, unet3d)' if data_3d else '2D'} model"
        )


def evaluate_run(
    run_dir: str | Path, data: str | Path, *, split: str = "val", format: str = "auto", batch_size: int = 4,
    device: str | torch.device = "cpu",
) -> dict:
    """The metrics report of the model in ``run_dir`` on ``split`` of the dataset at ``data``: semantic
    metrics, COCO mask and box AP for an instance run, PQ (and AP) for a panoptic run (the run's card says which)."""
    model = load_model(run_dir)
    info = model.card.info
    source = load_dataset(data, format=format, **_run_split(run_dir))
    if source.info.num_classes != info.num_classes:
        raise DataError(
            f"{data} has {source.info.num_classes} classes but the model in {run_dir} predicts "
            f"{info.num_classes}; evaluate on data with the same classes"
        )
    if model.card.task == "instance":
        scores = evaluate_instances(model, source.dataset(split), class_names=info.class_names, batch_size=batch_size,
                                    device=device)
        return {"task": "instance", "split": split, **scores}
    if model.card.task == "panoptic":
        scores = evaluate_panoptic(model, source.dataset(split), info=info, batch_size=batch_size, device=device)
        return {"task": "panoptic", "split": split, **scores}
    check_dimensions(model, source, data, f"the model in {run_dir}")
    pre = model.card.preprocessing
    normalise = {} if source.volumetric else {"mean": pre["mean"], "std": pre["std"]}
    dataset = TransformedDataset(source.dataset(split), eval_transforms_for(source.volumetric, **normalise))
    matrix = evaluate_model(model, dataset, num_classes=info.num_classes, ignore_index=info.ignore_index,
                            batch_size=batch_size, device=device)
    return {"split": split, **metrics_report(matrix.matrix, info.class_names)}


def _run_split(run_dir: str | Path) -> dict:
    """The seeded-split settings the run trained with (data without split folders is split the same way)."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return {}
    config = load_config(path)
    return {"val_fraction": config.data.val_fraction, "split_seed": config.data.split_seed}


def label_files(directory: Path) -> dict[str, Path]:
    if not directory.is_dir():
        raise DataError(f"{directory} is not a folder; pass a folder of PNG masks")
    files = {p.stem: p for p in sorted(directory.glob("*.png"))}
    if not files:
        raise DataError(f"{directory} holds no PNG masks")
    return files


def evaluate_folders(
    pred_dir: str | Path, gt_dir: str | Path, *, num_classes: int | None = None, ignore_index: int = 255
) -> ConfusionMatrix:
    """Confusion matrix of class-index PNGs in ``pred_dir`` against those in ``gt_dir``, matched by stem.

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
        labels = [np.unique(a) for pair in pairs for a in pair]
        seen = np.unique(np.concatenate(labels))
        num_classes = int(seen[seen != ignore_index].max()) + 1
    matrix = ConfusionMatrix(num_classes, ignore_index=ignore_index)
    for (pred, truth), stem in zip(pairs, truths):
        try:
            matrix.update(torch.from_numpy(pred), torch.from_numpy(truth))
        except ValueError as exc:
            raise DataError(f"{stem}.png: {exc}; pass --num-classes or fix the masks") from None
    return matrix


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


def iter_unsupervised(pred_dir: str | Path, gt_path: str | Path, *, tolerance: float = 0.0075):
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


def _detector_outputs(model: nn.Module, dataset: torch.utils.data.Dataset, transform: InstanceTransform, *, batch_size: int,
                      num_workers: int, device: str | torch.device):
    """``(target, output)`` for every Sample of ``dataset`` through a torchvision-style detector in eval mode."""
    loader = torch.utils.data.DataLoader(TransformedDataset(dataset, transform, instances=True), batch_size=batch_size,
                                         num_workers=num_workers, collate_fn=collate_instances)
    model = model.eval().to(device)
    for images, targets in loader:
        outputs = model([image.to(device) for image in images])
        yield from zip(targets, [{k: v.cpu() for k, v in output.items()} for output in outputs])


@torch.inference_mode()
def evaluate_instances(model: nn.Module, dataset: torch.utils.data.Dataset, *, class_names: list[str], batch_size: int = 2,
                       num_workers: int = 0, device: str | torch.device = "cpu", mask_threshold: float = 0.5) -> dict:
    """COCO mask and box AP (pycocotools) of an instance model over Samples with instances:
    ``{"segm": {"AP", "AP50", ..., "per_class"}, "bbox": {...}, "images": N}``."""
    truth, results = [], []
    for target, output in _detector_outputs(model, dataset, InstanceTransform(), batch_size=batch_size, num_workers=num_workers,
                                            device=device):
        entry, found = coco_records(len(truth) + 1, target, output, mask_threshold=mask_threshold)
        truth.append(entry)
        results += found
    return {**coco_evaluate_all(truth, results, class_names), "images": len(truth)}


def score_panoptic(quality: PanopticQuality, target: dict, output: dict, info: DatasetInfo, *, mask_threshold: float = 0.5,
                   merge_options: dict | None = None) -> None:
    """Add one image to ``quality``: a panoptic model's ``output`` merged, against the truth built from the
    ``target``'s class map (``semantic``) and instances."""
    pred_ids, segments = merge_prediction(output, info.things, mask_threshold=mask_threshold, **(merge_options or {}))
    truth_ids, truth_segments = panoptic_ground_truth(target["semantic"].numpy(), target["masks"].bool().numpy(),
                                                      target["labels"].tolist(), things=info.things, ignore_index=info.ignore_index)
    quality.update(pred_ids, {s["id"]: s["category_id"] for s in segments}, truth_ids, truth_segments)


@torch.inference_mode()
def evaluate_panoptic(model: nn.Module, dataset: torch.utils.data.Dataset, *, info: DatasetInfo, batch_size: int = 2,
                      num_workers: int = 0, device: str | torch.device = "cpu", mask_threshold: float = 0.5) -> dict:
    """Panoptic quality of a panoptic model's merged output (its own merge settings) over Samples with a
    class map and instances, and COCO AP of its instance branch: ``{"panoptic": {"all", "things", "stuff",
    "per_class"}, "segm": {...}, "bbox": {...}, "images": N}``."""
    quality = PanopticQuality(info.num_classes, things=info.things, class_names=info.class_names)
    truth, results = [], []
    transform = InstanceTransform(semantic=True, ignore_index=info.ignore_index)
    merge_options = getattr(model, "merge_options", {})
    for target, output in _detector_outputs(model, dataset, transform, batch_size=batch_size, num_workers=num_workers, device=device):
        entry, found = coco_records(len(truth) + 1, target, output, mask_threshold=mask_threshold)
        truth.append(entry)
        results += found
        score_panoptic(quality, target, output, info, mask_threshold=mask_threshold, merge_options=merge_options)
    return {"panoptic": quality.compute(), **coco_evaluate_all(truth, results, info.class_names), "images": len(truth)}
