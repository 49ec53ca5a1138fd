"""The compute device: one default for every command and API call (CUDA when available, else the CPU)."""

from __future__ import annotations

import torch

from omniseg.errors import ConfigError


def default_device() -> str:
    """``"cuda"`` when a CUDA device is available, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a :class:`torch.device` (None: :func:`default_device`); a name torch does not know, or CUDA
    asked for on a machine without it, is a one-line error."""
    if device is None:
        return torch.device(default_device())
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"--device {device!r} is not a device torch knows; use cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: this machine has no CUDA device; use --device cpu")
    return resolved
