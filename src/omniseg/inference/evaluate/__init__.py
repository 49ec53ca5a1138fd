"""Evaluation without a trainer, one module per concern: a model on a dataset (semantic), detectors (COCO AP,
panoptic quality), promptable models in clicks, folders of predicted PNGs, segmentations against BSDS (unsupervised), and run directories."""

from omniseg.inference.evaluate.clicks import evaluate_clicks, interactive_session
from omniseg.inference.evaluate.folders import evaluate_folders, folder_confusion, label_files
from omniseg.inference.evaluate.objects import evaluate_instances, evaluate_panoptic, score_panoptic
from omniseg.inference.evaluate.runs import evaluate_run
from omniseg.inference.evaluate.semantic import evaluate_model
from omniseg.inference.evaluate.unsupervised import (bsds_truth_files, evaluate_unsupervised, iter_unsupervised,
                                                     read_segmentation_png, unsupervised_report)

__all__ = [
    "bsds_truth_files", "evaluate_clicks", "evaluate_folders", "evaluate_instances", "evaluate_model", "evaluate_panoptic", "evaluate_run",
    "evaluate_unsupervised", "folder_confusion", "iter_unsupervised", "label_files", "read_segmentation_png",
    "interactive_session", "score_panoptic", "unsupervised_report",
]
