"""Thin ``nn.Module`` wrappers around :mod:`omniseg.losses.functional`, and their weighted sum."""

from __future__ import annotations

import torch
from torch import nn

from omniseg.losses import functional as LF


class CrossEntropyLoss(nn.Module):
    """Cross entropy with class weights, ``ignore_index`` and label smoothing."""

    def __init__(self, *, weight: torch.Tensor | None = None, ignore_index: int, label_smoothing: float = 0.0):
        super().__init__()
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight, dtype=torch.float32))
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return LF.cross_entropy(
            logits, target, weight=self.weight, ignore_index=self.ignore_index, label_smoothing=self.label_smoothing
        )


class FocalLoss(nn.Module):
    """Focal loss; ``weight`` (per class) acts as ``alpha``."""

    def __init__(self, *, gamma: float = 2.0, weight: torch.Tensor | None = None, ignore_index: int):
        super().__init__()
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight, dtype=torch.float32))
        self.gamma, self.ignore_index = gamma, ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return LF.focal_loss(logits, target, gamma=self.gamma, alpha=self.weight, ignore_index=self.ignore_index)


class DiceLoss(nn.Module):
    """Multiclass soft Dice loss over the classes present in the batch (``squared`` and
    ``include_background=False`` give V-Net's foreground Dice; see :func:`soft_dice_loss`)."""

    def __init__(self, *, ignore_index: int, smooth: float = 0.0, squared: bool = False,
                 include_background: bool = True):
        super().__init__()
        self.ignore_index, self.smooth = ignore_index, smooth
        self.squared, self.include_background = squared, include_background

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return LF.soft_dice_loss(logits, target, ignore_index=self.ignore_index, smooth=self.smooth,
                                 squared=self.squared, include_background=self.include_background)


class TverskyLoss(nn.Module):
    """Tversky loss, focal with ``gamma != 1`` (see :func:`~omniseg.losses.functional.tversky_loss`)."""

    def __init__(self, *, ignore_index: int, alpha: float = 0.3, beta: float = 0.7, gamma: float = 1.0):
        super().__init__()
        self.ignore_index, self.alpha, self.beta, self.gamma = ignore_index, alpha, beta, gamma

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return LF.tversky_loss(logits, target, ignore_index=self.ignore_index, alpha=self.alpha, beta=self.beta, gamma=self.gamma)


class LovaszSoftmaxLoss(nn.Module):
    """Lovasz-softmax loss, a convex surrogate of ``1 - IoU`` (see :func:`~omniseg.losses.functional.lovasz_softmax_loss`)."""

    def __init__(self, *, ignore_index: int):
        super().__init__()
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return LF.lovasz_softmax_loss(logits, target, ignore_index=self.ignore_index)


class OhemCrossEntropyLoss(nn.Module):
    """Cross entropy over the hard pixels (see :func:`~omniseg.losses.functional.ohem_cross_entropy`)."""

    def __init__(self, *, ignore_index: int, threshold: float = 0.7, min_kept: int = 100_000, weight: torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight, dtype=torch.float32))
        self.ignore_index, self.threshold, self.min_kept = ignore_index, threshold, min_kept

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return LF.ohem_cross_entropy(logits, target, ignore_index=self.ignore_index, threshold=self.threshold,
                                     min_kept=self.min_kept, weight=self.weight)


class WeightedSumLoss(nn.Module):
    """``sum_i w_i * loss_i(logits, target)``; ``terms`` maps a name to ``(weight, loss)``."""

    def __init__(self, terms: dict[str, tuple[float, nn.Module]]):
        super().__init__()
        self.weights = {name: w for name, (w, _) in terms.items()}
        self.losses = nn.ModuleDict({name: loss for name, (_, loss) in terms.items()})

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(self.weights[name] * loss(logits, target) for name, loss in self.losses.items())
