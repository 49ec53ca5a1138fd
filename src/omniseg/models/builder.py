"""The model registry and ``create_model``."""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
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
    for key, value in kwargs.items():
        hint = _hints(builder).get(key)
        if hint is not None and not _matches(hint, value):
            raise ConfigError(f"model {name!r}: {key}={value!r} is not {_describe(hint)}; "
                              f"set it to one (e.g. --set model.kwargs.{key}=...)")
    try:
        return builder(**kwargs)
    except ConfigError as exc:  # the user's own values; any other error inside a constructor is a bug and keeps its traceback
        raise ConfigError(f"model {name!r}: {exc}") from None


def _hints(builder) -> dict[str, Any]:
    try:
        return typing.get_type_hints(builder.__init__ if inspect.isclass(builder) else builder)
    except Exception:  # an annotation that does not evaluate is not checked
        return {}


def _matches(hint: Any, value: Any) -> bool:
    """Whether ``value`` (from a config or the command line) fits the annotation ``hint``; kinds of annotation
    that a config value cannot be checked against (callables, classes, modules) are accepted."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(arg, value) for arg in args)
    if origin is typing.Literal:
        return value in args
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (tuple, list, collections.abc.Sequence):
        if not isinstance(value, (list, tuple)):
            return False
        element = args[0] if args and (origin is not tuple or len(args) == 2 and args[1] is Ellipsis) else None
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(_matches(a, v) for a, v in zip(args, value))
        return element is None or all(_matches(element, v) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    return True


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(hint))
    names = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string", "NoneType": "null"}
    return names.get(getattr(hint, "__name__", ""), str(hint).replace("typing.", "").replace("collections.abc.", ""))


def list_models(task: str | None = None) -> list[str]:
    """Registered model names, optionally only those of ``task`` ("semantic", "instance", ...)."""
    return [n for n in MODELS.names() if task is None or MODELS.meta(n).get("task") == task]
