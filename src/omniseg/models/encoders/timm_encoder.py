"""Any timm backbone as a multi-scale encoder (``features_only``), with its real pretrained path."""

from __future__ import annotations

import difflib
from pathlib import Path

import timm
import torch
from torch import nn

from omniseg.errors import ConfigError


class TimmEncoder(nn.Module):
    """A timm model with ``features_only=True``.

    Args:
        name: any timm model name, e.g. ``"resnet34"``, ``"convnext_tiny"``, ``"efficientnet_b0"``.
        in_channels: input channels (timm adapts pretrained stem weights when this is not 3).
        weights: ``None`` (random init), ``"imagenet"`` (timm ``pretrained=True``, downloads when online),
            or the path of a weights file of the timm model (``.safetensors``, or a state dict that
            ``torch.load(weights_only=True)`` reads), loaded through timm's own pretrained loader.
        output_stride: 8 or 16 for dilated backbones that support it; ``None`` keeps 32.

    ``forward(x) -> list[Tensor]``, one per stage; ``channels`` and ``strides`` describe them.
    """

    def __init__(
        self, name: str, *, in_channels: int = 3, weights: str | None = None, output_stride: int | None = None
    ) -> None:
        super().__init__()
        if name not in timm.list_models():
            close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else "; see timm.list_models()"
            raise ConfigError(f"unknown timm encoder {name!r}{hint}")
        kwargs: dict = {"features_only": True, "in_chans": in_channels}
        if output_stride is not None:
            kwargs["output_stride"] = output_stride
        if weights == "imagenet":
            kwargs["pretrained"] = True
        elif weights is not None:
            path = Path(weights)
            if not path.is_file():
                raise ConfigError(f"encoder weights file {path} does not exist; pass a .safetensors or .pth file")
            kwargs["pretrained"] = True
            kwargs["pretrained_cfg_overlay"] = {"file": str(path)}
        try:
            self.model = timm.create_model(name, **kwargs)
        except RuntimeError as exc:
            if weights not in (None, "imagenet"):
                raise ConfigError(
                    f"encoder weights {weights} do not fit timm model {name!r} ({str(exc).splitlines()[0]}); "
                    f"save the state_dict of timm.create_model({name!r})"
                ) from None
            raise
        except Exception as exc:
            if weights is not None and "pickle" in str(exc).lower():
                raise ConfigError(
                    f"encoder weights {weights} need unpickling of arbitrary objects, which omniseg refuses; "
                    "save a plain state_dict or convert it to .safetensors"
                ) from None
            raise
        self.name = name
        self.channels = list(self.model.feature_info.channels())
        self.strides = list(self.model.feature_info.reduction())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.model(x)
