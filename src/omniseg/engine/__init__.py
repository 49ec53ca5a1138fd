"""Training: Lightning modules, the trainer factory, callbacks and the run directory."""

from omniseg.engine.trainer import TrainResult, build_trainer, train

__all__ = ["TrainResult", "build_trainer", "train"]
