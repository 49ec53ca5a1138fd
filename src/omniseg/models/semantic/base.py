"""The semantic model contract: logits at the input size for any H, W."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from omniseg.errors import ConfigError


def is_volumetric(model: nn.Module) -> bool:
    """Whether ``model`` takes volumes ``[N, C, D, H, W]`` (any module without ``spatial_dims`` is 2D)."""
    return getattr(model, "spatial_dims", 2) == 3


def check_dimensions(model: nn.Module, *, volumetric_data: bool, data: str, name: str = "the model") -> None:
    """Refuse a 2D model on volumes or a 3D model on images (``data`` names the dataset), before any work."""
    model_3d = is_volumetric(model)
    if model_3d != volumetric_data:
        raise ConfigError(
            f"{name} takes {'volumes [N, C, D, H, W]' if model_3d else 'images [N, C, H, W]'} but {data} holds "
            f"{'volumes' if volumetric_data else '2D images'}; choose a {'volumetric (vnet, unet3d)' if volumetric_data else '2D'} model"
        )


class SegmentationModel(nn.Module):
    """Base of semantic models: pads the input to a multiple of ``size_divisor`` and crops back
    (2D images, or volumes when ``spatial_dims`` is 3).

    Subclasses set ``size_divisor`` and implement ``_forward(x) -> logits`` (or ``(logits, aux)``
    when asked for auxiliary outputs) on the padded input.

    ``forward(x: Tensor[N, C, H, W]) -> Tensor[N, K, H, W]``; ``forward(x, aux=True)`` returns
    ``(logits, [aux logits, ...])`` for deep supervision.
    """

    size_divisor: int = 1
    spatial_dims: int = 2  # 3 for volumetric models: [N, C, D, H, W]
    num_classes: int

    @property
    def has_aux(self) -> bool:
        """Whether ``forward(x, aux=True)`` returns auxiliary outputs (models with heads set ``self.aux``)."""
        return getattr(self, "aux", None) is not None

    def _check_aux(self, aux: bool) -> None:
        if aux and not self.has_aux:
            raise ValueError(
                f"this {type(self).__name__} has no auxiliary heads; build it with its auxiliary option "
                "(aux_head=True, deep_supervision=True) where it has one, or call it without aux=True"
            )

    def forward(self, x: torch.Tensor, aux: bool = False):
        if x.ndim != 2 + self.spatial_dims:
            shape = "[N, C, H, W]" if self.spatial_dims == 2 else "[N, C, D, H, W]"
            raise ValueError(f"{type(self).__name__} expects input of shape {shape}, got {tuple(x.shape)}")
        self._check_aux(aux)
        size = x.shape[2:]
        pads = [p for side in reversed(size) for p in (0, -side % self.size_divisor)]
        if any(pads):
            x = F.pad(x, pads)
        out = self._forward(x, aux=aux)
        crop = (..., *(slice(0, side) for side in size))
        if aux:
            logits, extra = out
            return logits[crop], [a[crop] for a in extra]
        return out[crop]


def valid_output_size(size: int, depth: int) -> int | None:
    """Output side of a U-Net with unpadded 3x3 convolutions (two per level), ``depth`` 2x poolings,
    for an input side ``size`` (572 -> 388 at depth 4), or None when ``size`` does not fit."""
    for _ in range(depth):
        size -= 4
        if size <= 0 or size % 2:
            return None
        size //= 2
    size -= 4
    for _ in range(depth):
        size = size * 2 - 4
    return size if size > 0 else None


def overlap_tile(valid_forward, x: torch.Tensor, depth: int) -> torch.Tensor:
    """Run an unpadded U-Net over any input (2D or 3D): mirror the borders so the smaller valid output
    covers the whole input (the U-Net paper's overlap-tile strategy), then crop to the input size."""
    size = x.shape[2:]
    pads = []
    for side in reversed(size):
        total = side
        while (out := valid_output_size(total, depth)) is None or out < side:
            total += 1
        margin = total - out
        pads += [margin // 2, total - side - margin // 2]
    mode = "reflect" if max(pads) < min(size) else "replicate"
    out = valid_forward(F.pad(x, pads, mode=mode))
    return out[(..., *(slice(0, s) for s in size))]
