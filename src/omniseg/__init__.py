"""omniseg: image segmentation in all its forms, from one command and a small Python API.

The public names load on first use, so ``import omniseg`` (and ``omniseg --help``) stays light: torch,
OpenCV, timm, Lightning and the rest are imported by whatever needs them, when it runs.

Example:
    >>> import omniseg
    >>> model = omniseg.create_model("unet", num_classes=5, depth=2, base_channels=8)
    >>> mask = omniseg.Predictor("runs/demo").predict("image.png")  # doctest: +SKIP
"""

from __future__ import annotations

from omniseg._lazy import lazy_attributes
from omniseg._version import __version__

# public name -> the module that defines it
_PUBLIC = {
    "AutomaticMaskGenerator": "omniseg.inference.promptable.automatic_masks",
    "ConfigError": "omniseg.errors",
    "ConfusionMatrix": "omniseg.metrics.confusion",
    "DataError": "omniseg.errors",
    "DatasetInfo": "omniseg.core.info",
    "OmnisegError": "omniseg.errors",
    "Plan": "omniseg.plan.planner",
    "Predictor": "omniseg.inference.prediction.predictor",
    "PromptPredictor": "omniseg.inference.promptable.prompt_predictor",
    "RunConfig": "omniseg.config",
    "TrainingError": "omniseg.errors",
    "autolabel_images": "omniseg.inference.promptable.prompt_files",
    "create_model": "omniseg.models",  # the package: importing it registers the architectures
    "evaluate_folders": "omniseg.inference.evaluate",
    "evaluate_run": "omniseg.inference.evaluate",
    "evaluate_unsupervised": "omniseg.inference.evaluate",
    "export_run": "omniseg.inference.deploy.export",
    "list_models": "omniseg.models",
    "list_runs": "omniseg.inference.runs",
    "load_config": "omniseg.config",
    "load_dataset": "omniseg.data.formats",
    "load_model": "omniseg.models.hub",
    "load_prompt_model": "omniseg.inference.promptable.prompt_predictor",
    "make_plan": "omniseg.plan.planner",
    "predict_images": "omniseg.inference.prediction.predict_files",
    "prompt_image": "omniseg.inference.promptable.prompt_files",
    "run_demo": "omniseg.engine.demo",
    "segment_images": "omniseg.inference.prediction.segment_files",
    "train": "omniseg.engine.trainer",
}

__all__ = ["__version__", *sorted(_PUBLIC)]


__getattr__, __dir__ = lazy_attributes(__name__, _PUBLIC, globals())
