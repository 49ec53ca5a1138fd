"""Instance and panoptic evaluation: COCO mask and box AP (pycocotools) and panoptic quality of a detector."""

from __future__ import annotations

import torch
from torch import nn

from omniseg.data.sample import DatasetInfo
from omniseg.data.transforms import InstanceTransform, TransformedDataset, collate_instances
from omniseg.metrics import coco_evaluate_all, coco_records
from omniseg.metrics.panoptic import PanopticQuality, panoptic_ground_truth
from omniseg.models.panoptic.merge import merge_prediction


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
