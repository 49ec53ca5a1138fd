"""Inference without a trainer: Predictor, evaluation, writers, inference-time optimisation."""

from omniseg.inference.evaluate import evaluate_folders, evaluate_model
from omniseg.inference.predictor import Predictor
from omniseg.inference.writers import write_prediction

__all__ = ["Predictor", "evaluate_folders", "evaluate_model", "write_prediction"]
