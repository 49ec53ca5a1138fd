"""Reading pretrained weights files safely: safetensors, or ``torch.load(weights_only=True)``."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from omniseg.errors import ConfigError


def read_state_dict(path: str | Path, what: str = "weights") -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file or of a plain state dict saved with ``torch.save``
    (``{"state_dict": ...}`` wrappers unwrapped); never unpickles arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} file {path} does not exist; pass a .safetensors or .pth file")
    if path.suffix == ".safetensors":
        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(
            f"{what} {path} cannot be read as a plain state dict ({str(exc).splitlines()[0]}); "
            "save model.state_dict() or convert it to .safetensors"
        ) from None
    for wrapper in ("state_dict", "model"):  # Lightning-style and SAM 2's {"model": state_dict} files
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise ConfigError(f"{what} {path} hold a {type(state).__name__}, not a state dict")
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def adapt_first_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """RGB filters ``[O, 3, k, k]`` for ``in_channels`` inputs (timm's rule): summed for one channel,
    otherwise cycled over the new channels and rescaled, so a grey image gives the same response."""
    if weight.shape[1] == in_channels:
        return weight
    if in_channels == 1:
        return weight.sum(1, keepdim=True)
    reps = -(-in_channels // weight.shape[1])
    return weight.repeat(1, reps, 1, 1)[:, :in_channels] * weight.shape[1] / in_channels
