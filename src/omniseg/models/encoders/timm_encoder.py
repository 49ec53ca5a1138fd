"""Any timm backbone as a multi-scale encoder (``features_only``), with its real pretrained path."""

from __future__ import annotations

import difflib
from pathlib import Path

import timm
import torch
from safetensors import safe_open
from torch import nn

from omniseg.errors import ConfigError
from omniseg.models.encoders.weights import read_state_dict


def _read_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of a weights file, without unpickling anything."""
    if path.suffix == ".safetensors":
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    return {k: tuple(v.shape) for k, v in read_state_dict(path, "encoder weights").items()}


def _check_weights_file(name: str, path: Path, in_channels: int) -> None:
    """Refuse a weights file that is not a state dict of ``timm.create_model(name)``: timm itself
    loads feature backbones non-strictly and would only log the mismatch."""
    reference = timm.create_model(name, in_chans=in_channels)
    classifier = reference.pretrained_cfg.get("classifier") or ()
    skip = tuple(f"{c}." for c in ((classifier,) if isinstance(classifier, str) else classifier))
    expected = {k: tuple(v.shape) for k, v in reference.state_dict().items() if not k.startswith(skip)}
    found = {k: v for k, v in _read_shapes(path).items() if not k.startswith(skip)}
    first_conv = reference.pretrained_cfg.get("first_conv")
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = [k for k in set(expected) & set(found) if expected[k] != found[k]
             and not (in_channels != 3 and first_conv and k == f"{first_conv}.weight")]
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{what} {keys[:3]}" for what, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", sorted(wrong))) if keys
        )
        raise ConfigError(
            f"encoder weights {path} do not fit timm model {name!r} ({detail}); "
            f"save the state_dict of timm.create_model({name!r})"
        )


class TimmEncoder(nn.Module):
    """A timm model with ``features_only=True``.

    Args:
        name: any timm model name, e.g. ``"resnet34"``, ``"convnext_tiny"``, ``"efficientnet_b0"``.
        in_channels: input channels (timm adapts pretrained stem weights when this is not 3).
        weights: ``None`` (random init), ``"imagenet"`` (timm ``pretrained=True``, downloads when online),
            or the path of a weights file of the timm model (``.safetensors``, or a state dict that
            ``torch.load(weights_only=True)`` reads), loaded through timm's own pretrained loader.
        output_stride: 8 or 16 for dilated backbones that support it; ``None`` keeps 32.
        **timm_kwargs: passed on to ``timm.create_model`` (``out_indices``, ``dynamic_img_size``, ...).

    ``forward(x) -> list[Tensor]``, one per stage; ``channels`` and ``strides`` describe them.
    """

    def __init__(
        self, name: str, *, in_channels: int = 3, weights: str | None = None, output_stride: int | None = None,
        **timm_kwargs,
    ) -> None:
        super().__init__()
        if name not in timm.list_models():
            close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else "; see timm.list_models()"
            raise ConfigError(f"unknown timm encoder {name!r}{hint}")
        kwargs: dict = {"features_only": True, "in_chans": in_channels, **timm_kwargs}
        if output_stride is not None:
            kwargs["output_stride"] = output_stride
        if weights == "imagenet":
            kwargs["pretrained"] = True
        elif weights is not None:
            path = Path(weights)
            if not path.is_file():
                raise ConfigError(f"encoder weights file {path} does not exist; pass a .safetensors or .pth file")
            _check_weights_file(name, path, in_channels)
            kwargs["pretrained"] = True
            kwargs["pretrained_cfg_overlay"] = {"file": str(path)}
        self.model = timm.create_model(name, **kwargs)
        self.name = name
        self.channels = list(self.model.feature_info.channels())
        self.strides = list(self.model.feature_info.reduction())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.model(x)
