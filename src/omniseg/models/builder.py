"""The model registry and ``create_model``."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from omniseg.errors import ConfigError
from omniseg.registry import Registry

MODELS: Registry = Registry("model")


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name``; keyword arguments go to its builder.

    Example:
        >>> model = create_model("unet", num_classes=5, depth=2, base_channels=8)
        >>> type(model).__name__
        'UNet'
    """
    builder = MODELS.get(name)
    accepted = inspect.signature(builder).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ConfigError(
            f"model {name!r} takes no argument {', '.join(map(repr, unknown))}; it takes {', '.join(accepted)}"
        )
    try:
        return builder(**kwargs)
    except ValueError as exc:
        raise ConfigError(f"model {name!r}: {exc}") from None


def list_models(task: str | None = None) -> list[str]:
    """Registered model names, optionally only those of ``task`` ("semantic", "instance", ...)."""
    return [n for n in MODELS.names() if task is None or MODELS.meta(n).get("task") == task]
