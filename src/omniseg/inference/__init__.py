"""Inference without a trainer: Predictor, the prompt predictor and automatic mask generator, prediction,
prompting and classical segmentation over files, evaluation, writers, export, inference-time optimisation."""

from omniseg.inference.automatic_masks import AutomaticMaskGenerator
from omniseg.inference.evaluate import evaluate_folders, evaluate_model, evaluate_run, evaluate_unsupervised
from omniseg.inference.inputs import collect_images
from omniseg.inference.predict_files import PredictionSummary, predict_images
from omniseg.inference.predictor import Predictor
from omniseg.inference.prompt_files import autolabel_images, prompt_image
from omniseg.inference.prompt_predictor import ClassicalPromptEngine, PromptPredictor, PromptResult, load_prompt_model
from omniseg.inference.segment_files import segment_images
from omniseg.inference.writers import write_prediction

__all__ = [
    "AutomaticMaskGenerator", "ClassicalPromptEngine", "PredictionSummary", "Predictor", "PromptPredictor", "PromptResult",
    "autolabel_images", "collect_images", "evaluate_folders", "evaluate_model", "evaluate_run", "evaluate_unsupervised",
    "load_prompt_model", "predict_images", "prompt_image", "segment_images", "write_prediction",
]
