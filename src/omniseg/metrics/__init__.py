"""Metrics: exact streaming semantic metrics (confusion matrix), panoptic quality, COCO AP via pycocotools,
and the unsupervised region measures (PRI, VoI, covering, adapted Rand error)."""

from omniseg.metrics.coco_ap import coco_evaluate, coco_evaluate_all, coco_ground_truth, coco_records, coco_results
from omniseg.metrics.confusion import ConfusionMatrix, metrics_from_confusion, metrics_report
from omniseg.metrics.panoptic import PanopticQuality
from omniseg.metrics.unsupervised import (adapted_rand_error, probabilistic_rand_index, rand_index, segmentation_covering,
                                          variation_of_information)

__all__ = ["ConfusionMatrix", "PanopticQuality", "coco_evaluate", "coco_evaluate_all", "coco_ground_truth", "coco_records",
           "coco_results", "metrics_from_confusion", "metrics_report", "adapted_rand_error", "probabilistic_rand_index",
           "rand_index", "segmentation_covering", "variation_of_information"]
