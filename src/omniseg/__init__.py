"""omniseg: image segmentation in all its forms, from one command and a small Python API.

Example:
    >>> import omniseg
    >>> model = omniseg.create_model("unet", num_classes=5, depth=2, base_channels=8)
    >>> mask = omniseg.Predictor("runs/demo").predict("image.png")  # doctest: +SKIP
"""

from omniseg._version import __version__
from omniseg.config import RunConfig, load_config
from omniseg.core import DatasetInfo
from omniseg.data import load_dataset
from omniseg.errors import ConfigError, DataError, OmnisegError, TrainingError
from omniseg.inference import (AutomaticMaskGenerator, Predictor, PromptPredictor, autolabel_images, evaluate_folders,
                               evaluate_run, evaluate_unsupervised, load_prompt_model, predict_images, prompt_image,
                               segment_images)
from omniseg.inference.export import export_run
from omniseg.metrics import ConfusionMatrix
from omniseg.models import create_model, list_models, load_model
from omniseg.plan import Plan, make_plan

__all__ = [
    "AutomaticMaskGenerator",
    "ConfigError",
    "ConfusionMatrix",
    "DataError",
    "DatasetInfo",
    "OmnisegError",
    "Plan",
    "Predictor",
    "PromptPredictor",
    "RunConfig",
    "TrainingError",
    "__version__",
    "autolabel_images",
    "create_model",
    "evaluate_folders",
    "evaluate_run",
    "evaluate_unsupervised",
    "export_run",
    "list_models",
    "load_config",
    "load_dataset",
    "load_model",
    "load_prompt_model",
    "make_plan",
    "predict_images",
    "prompt_image",
    "run_demo",
    "segment_images",
    "train",
]


def __getattr__(name: str):
    # training pulls in Lightning; import it only when asked for, so prediction stays light
    if name == "train":
        from omniseg.engine import train

        return train
    if name == "run_demo":
        from omniseg.engine.demo import run_demo

        return run_demo
    raise AttributeError(f"module 'omniseg' has no attribute {name!r}")
