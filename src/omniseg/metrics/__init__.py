"""Metrics: exact streaming semantic metrics (confusion matrix), panoptic quality, and COCO AP via pycocotools."""

from omniseg.metrics.coco_ap import coco_evaluate, coco_evaluate_all, coco_ground_truth, coco_records, coco_results
from omniseg.metrics.confusion import ConfusionMatrix, metrics_from_confusion, metrics_report
from omniseg.metrics.panoptic import PanopticQuality

__all__ = ["ConfusionMatrix", "PanopticQuality", "coco_evaluate", "coco_evaluate_all", "coco_ground_truth", "coco_records",
           "coco_results", "metrics_from_confusion", "metrics_report"]
