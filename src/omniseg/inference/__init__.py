"""Inference without a trainer: Predictor, prediction and classical segmentation over files, evaluation,
writers, export, inference-time optimisation."""

from omniseg.inference.evaluate import evaluate_folders, evaluate_model, evaluate_run, evaluate_unsupervised
from omniseg.inference.inputs import collect_images
from omniseg.inference.predict_files import PredictionSummary, predict_images
from omniseg.inference.predictor import Predictor
from omniseg.inference.segment_files import segment_images
from omniseg.inference.writers import write_prediction

__all__ = [
    "PredictionSummary", "Predictor", "collect_images", "evaluate_folders", "evaluate_model", "evaluate_run",
    "evaluate_unsupervised", "predict_images", "segment_images", "write_prediction",
]
