"""The semantic model contract: logits at the input size for any H, W."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class SegmentationModel(nn.Module):
    """Base of semantic models: pads the input to a multiple of ``size_divisor`` and crops back.

    Subclasses set ``size_divisor`` and implement ``_forward(x) -> logits`` (or ``(logits, aux)``
    when asked for auxiliary outputs) on the padded input.

    ``forward(x: Tensor[N, C, H, W]) -> Tensor[N, K, H, W]``; ``forward(x, aux=True)`` returns
    ``(logits, [aux logits, ...])`` for deep supervision.
    """

    size_divisor: int = 1
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
        if x.ndim != 4:
            raise ValueError(f"expected input of shape [N, C, H, W], got {tuple(x.shape)}")
        self._check_aux(aux)
        height, width = x.shape[-2:]
        pad_h = -height % self.size_divisor
        pad_w = -width % self.size_divisor
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        out = self._forward(x, aux=aux)
        if aux:
            logits, extra = out
            return logits[..., :height, :width], [a[..., :height, :width] for a in extra]
        return out[..., :height, :width]
