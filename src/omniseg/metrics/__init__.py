"""Metrics: exact streaming semantic metrics (confusion matrix), panoptic quality, COCO AP via pycocotools,
the unsupervised region and boundary measures (PRI, VoI, covering, adapted Rand error, BSDS boundary F),
interactive segmentation in clicks (the click simulator, mIoU@k, NoC@85/90), and video: multi-object tracking (HOTA,
CLEAR's MOTSA / sMOTSA, IDF1) and DAVIS's J&F."""

from omniseg.metrics.boundary import (BoundaryCounts, boundary_counts, boundary_scores, label_boundaries, optimal_boundary_scores,
                                      optimal_region_scores)
from omniseg.metrics.clicks import Click, click_metrics, clicks_to_reach, next_click, simulate_clicks
from omniseg.metrics.coco_ap import coco_evaluate, coco_evaluate_all, coco_ground_truth, coco_records, coco_results
from omniseg.metrics.confusion import ConfusionMatrix, metrics_from_confusion, metrics_report
from omniseg.metrics.panoptic import PanopticQuality
from omniseg.metrics.tracking import TrackSequence, tracking_scores
from omniseg.metrics.unsupervised import (adapted_rand_error, probabilistic_rand_index, rand_index, segmentation_covering,
                                          variation_of_information)
from omniseg.metrics.video_objects import VideoObjectScores, video_object_scores

__all__ = ["BoundaryCounts", "boundary_counts", "boundary_scores", "label_boundaries", "optimal_boundary_scores", "optimal_region_scores",
           "ConfusionMatrix", "PanopticQuality", "coco_evaluate", "coco_evaluate_all", "coco_ground_truth", "coco_records",
           "coco_results", "metrics_from_confusion", "metrics_report", "adapted_rand_error", "probabilistic_rand_index",
           "rand_index", "segmentation_covering", "variation_of_information", "Click", "click_metrics", "clicks_to_reach",
           "next_click", "simulate_clicks", "TrackSequence", "tracking_scores", "VideoObjectScores", "video_object_scores"]
