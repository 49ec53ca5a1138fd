"""Inference without a trainer, grouped by concern: ``prediction`` (Predictor, prediction and classical segmentation
over files), ``promptable`` (prompt predictor, automatic masks), ``tiling`` (sliding windows, large rasters, TTA, tiled
instances), ``deploy`` (export, onnxruntime), ``evaluate`` (runs, folders, clicks), ``writers`` and ``runs``.

The names below load on first use, so importing one part does not import the others."""

from __future__ import annotations

import importlib

_PUBLIC = {
    "AutomaticMaskGenerator": "promptable.automatic_masks",
    "ClassicalPromptEngine": "promptable.prompt_predictor",
    "PredictionSummary": "prediction.predict_files",
    "Predictor": "prediction.predictor",
    "PromptPredictor": "promptable.prompt_predictor",
    "PromptResult": "promptable.prompt_predictor",
    "autolabel_images": "promptable.prompt_files",
    "collect_images": "prediction.inputs",
    "evaluate_folders": "evaluate",
    "evaluate_model": "evaluate",
    "evaluate_run": "evaluate",
    "evaluate_unsupervised": "evaluate",
    "list_runs": "runs",
    "load_prompt_model": "promptable.prompt_predictor",
    "predict_images": "prediction.predict_files",
    "prompt_image": "promptable.prompt_files",
    "segment_images": "prediction.segment_files",
    "write_prediction": "writers",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'omniseg.inference' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"omniseg.inference.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
