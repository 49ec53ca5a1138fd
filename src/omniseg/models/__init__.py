"""Models: encoders, layers, architectures (registered by name) and the safetensors hub."""

from omniseg.models import instance, panoptic, promptable, semantic, volumetric  # noqa: F401  (registers the architectures)
from omniseg.models.builder import MODELS, create_model, list_models
from omniseg.models.hub import ModelCard, load_model, save_model

__all__ = ["MODELS", "ModelCard", "create_model", "list_models", "load_model", "save_model"]
