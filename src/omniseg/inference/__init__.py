"""Inference without a trainer, grouped by concern: ``prediction`` (Predictor, prediction and classical segmentation
over files), ``promptable`` (prompt predictor, automatic masks), ``tracking`` (videos: tracking by detection or by SAM 2,
``omniseg track``), ``tiling`` (sliding windows, large rasters, TTA, tiled
instances), ``deploy`` (export, onnxruntime), ``evaluate`` (runs, folders, clicks), ``writers`` and ``runs``.

The names below load on first use, so importing one part does not import the others."""

from __future__ import annotations

from omniseg._lazy import lazy_attributes

_PUBLIC = {
    "AutomaticMaskGenerator": "omniseg.inference.promptable.automatic_masks",
    "ClassicalPromptEngine": "omniseg.inference.promptable.prompt_predictor",
    "PredictionSummary": "omniseg.inference.prediction.predict_files",
    "Predictor": "omniseg.inference.prediction.predictor",
    "Tracker": "omniseg.inference.tracking.association",
    "TrackerConfig": "omniseg.inference.tracking.association",
    "evaluate_video": "omniseg.inference.evaluate.video",
    "track_objects": "omniseg.inference.tracking.track_detections",
    "track_video": "omniseg.inference.tracking.track_prompts",
    "PromptPredictor": "omniseg.inference.promptable.prompt_predictor",
    "PromptResult": "omniseg.inference.promptable.prompt_predictor",
    "autolabel_images": "omniseg.inference.promptable.prompt_files",
    "collect_images": "omniseg.inference.prediction.inputs",
    "evaluate_folders": "omniseg.inference.evaluate",
    "evaluate_model": "omniseg.inference.evaluate",
    "evaluate_run": "omniseg.inference.evaluate",
    "evaluate_unsupervised": "omniseg.inference.evaluate",
    "list_runs": "omniseg.inference.runs",
    "load_prompt_model": "omniseg.inference.promptable.prompt_predictor",
    "predict_images": "omniseg.inference.prediction.predict_files",
    "prompt_image": "omniseg.inference.promptable.prompt_files",
    "segment_images": "omniseg.inference.prediction.segment_files",
    "write_prediction": "omniseg.inference.writers",
}

__all__ = sorted(_PUBLIC)


__getattr__, __dir__ = lazy_attributes(__name__, _PUBLIC, globals())
