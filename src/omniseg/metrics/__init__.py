"""Metrics: exact streaming semantic metrics (confusion matrix)."""

from omniseg.metrics.confusion import ConfusionMatrix, metrics_from_confusion, metrics_report

__all__ = ["ConfusionMatrix", "metrics_from_confusion", "metrics_report"]
