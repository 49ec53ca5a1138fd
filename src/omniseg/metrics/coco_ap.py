"""COCO mask and box AP, computed by pycocotools itself; omniseg only converts to its formats.

``coco_ground_truth`` turns Samples (instances) into a COCO ground-truth dict, ``coco_results`` turns
predictions (torchvision detection outputs: boxes, labels, scores, masks) into COCO results with RLE
masks, and ``coco_evaluate`` runs ``COCOeval`` and returns AP, AP50, AP75, APs/APm/APl, the recalls
and per-class AP.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Sequence

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from omniseg.core.instance_masks import InstanceMasks
from omniseg.core.rle import encode_rle

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def coco_ground_truth(images: Sequence[dict], class_names: Sequence[str], *, first_class: int = 1) -> dict:
    """A COCO ground-truth dict from ``images``: each ``{"id", "height", "width", "masks" [N, H, W] bool,
    "labels" [N], optional "iscrowd" [N]}``. Categories are classes ``first_class..K-1`` (0 is the
    background in omniseg's instance classes), with their class ids as category ids."""
    dataset = {"images": [], "annotations": [], "categories": [{"id": c, "name": class_names[c]} for c in range(first_class, len(class_names))]}
    for image in images:
        dataset["images"].append({"id": int(image["id"]), "height": int(image["height"]), "width": int(image["width"])})
        crowd = image.get("iscrowd", np.zeros(len(image["labels"]), bool))
        for mask, label, iscrowd in zip(image["masks"], image["labels"], crowd):
            rle = encode_rle(mask)
            area = float(mask_utils.area(rle))
            if area == 0:
                continue
            dataset["annotations"].append({
                "id": len(dataset["annotations"]) + 1, "image_id": int(image["id"]), "category_id": int(label),
                "segmentation": rle, "area": area, "bbox": [float(v) for v in mask_utils.toBbox(rle)], "iscrowd": int(bool(iscrowd)),
            })
    return dataset


def coco_results(image_id: int, prediction: dict, *, mask_threshold: float = 0.5) -> list[dict]:
    """COCO results of one image from a torchvision-style prediction: ``boxes`` [N, 4] XYXY, ``labels``
    [N], ``scores`` [N], optional ``masks`` [N, 1, H, W] (probabilities, thresholded), [N, H, W] bool, or
    :class:`~omniseg.core.instance_masks.InstanceMasks` (encoded one mask at a time)."""
    boxes = np.asarray(prediction["boxes"], np.float64).reshape(-1, 4)
    labels, scores = np.asarray(prediction["labels"]).reshape(-1), np.asarray(prediction["scores"], np.float64).reshape(-1)
    masks = prediction.get("masks")
    if masks is not None and not isinstance(masks, InstanceMasks):
        masks = np.asarray(masks)
        masks = masks[:, 0] if masks.ndim == 4 else masks
        masks = masks >= mask_threshold if masks.dtype != bool else masks
    results = []
    for index, (box, label, score) in enumerate(zip(boxes, labels, scores)):
        entry = {"image_id": int(image_id), "category_id": int(label), "score": float(score),
                 "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]}
        if masks is not None:
            entry["segmentation"] = encode_rle(masks[index])
        results.append(entry)
    return results


def coco_evaluate(ground_truth: dict, results: list[dict], *, iou_type: str = "segm") -> dict:
    """Run pycocotools' COCOeval (``iou_type`` "segm" or "bbox"); returns ``{"AP", "AP50", ...,
    "per_class": {name: AP}}`` with values in 0..1 (-1 where pycocotools has nothing to measure)."""
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        gt = COCO()
        gt.dataset = copy.deepcopy(ground_truth)
        gt.dataset.setdefault("info", {})
        gt.createIndex()
        if not results:
            return {name: 0.0 for name in STAT_NAMES} | {"per_class": {c["name"]: 0.0 for c in ground_truth["categories"]}}
        detections = gt.loadRes(copy.deepcopy(results))
        evaluator = COCOeval(gt, detections, iouType=iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = {name: float(value) for name, value in zip(STAT_NAMES, evaluator.stats)}
    precision = evaluator.eval["precision"]  # [T, R, K, A, M]: IoU thresholds, recalls, classes, areas, max dets
    per_class = {}
    for k, category in enumerate(evaluator.params.catIds):
        values = precision[:, :, k, 0, -1]
        values = values[values > -1]
        per_class[gt.cats[category]["name"]] = float(values.mean()) if values.size else float("nan")
    return stats | {"per_class": per_class}


def coco_records(image_id: int, target: dict, output: dict, *, mask_threshold: float = 0.5) -> tuple[dict, list[dict]]:
    """One image's ground-truth entry (for :func:`coco_ground_truth`) and COCO results, from a detector's
    ``target`` (``masks`` [N, H, W], ``labels``) and ``output`` (tensors or arrays)."""
    masks = np.asarray(target["masks"]).astype(bool)
    truth = {"id": image_id, "height": masks.shape[-2], "width": masks.shape[-1], "masks": masks, "labels": np.asarray(target["labels"])}
    values = {k: v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v) for k, v in output.items()}
    return truth, coco_results(image_id, values, mask_threshold=mask_threshold)


def coco_evaluate_all(truth: list[dict], results: list[dict], class_names: Sequence[str]) -> dict:
    """Mask and box AP of the gathered ``truth`` entries and ``results``: ``{"segm": {...}, "bbox": {...}}``."""
    ground_truth = coco_ground_truth(truth, class_names)
    boxes_only = [{k: v for k, v in r.items() if k != "segmentation"} for r in results]
    return {"segm": coco_evaluate(ground_truth, results, iou_type="segm"), "bbox": coco_evaluate(ground_truth, boxes_only, iou_type="bbox")}
