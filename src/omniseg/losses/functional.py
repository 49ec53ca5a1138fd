"""Loss functions as pure functions of ``logits [N, K, H, W]`` and ``target [N, H, W]`` (int64);
volumes ``[N, K, D, H, W]`` and ``[N, D, H, W]`` work the same.

Pixels equal to ``ignore_index`` count nowhere: not in the numerator, not in the normaliser.
A batch with no labelled pixel gives a loss of 0 that still carries a (zero) gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _valid(target: torch.Tensor, ignore_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(valid [N, H, W] bool, target with ignored pixels set to class 0)``."""
    valid = target != ignore_index
    return valid, torch.where(valid, target, torch.zeros_like(target))


def cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    weight: torch.Tensor | None = None,
    ignore_index: int,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Pixel-wise cross entropy, averaged over labelled pixels (weighted mean when ``weight`` [K] is given).

    Example:
        >>> logits = torch.tensor([[[[0.0]], [[0.0]]]])  # two classes, equal scores
        >>> void = 255  # the dataset's unlabelled value, DatasetInfo.ignore_index
        >>> round(cross_entropy(logits, torch.tensor([[[1]]]), ignore_index=void).item(), 4)  # log 2
        0.6931
    """
    if not (target != ignore_index).any():
        return logits.sum() * 0.0
    return F.cross_entropy(
        logits, target, weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing
    )


def focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    gamma: float = 2.0,
    alpha: torch.Tensor | None = None,
    ignore_index: int,
) -> torch.Tensor:
    """Focal loss (Lin et al., 2017): ``-alpha_t (1 - p_t)^gamma log p_t``, mean over labelled pixels.

    ``gamma = 0`` and no ``alpha`` is plain cross entropy.
    """
    valid, safe_target = _valid(target, ignore_index)
    log_p = F.log_softmax(logits, dim=1).gather(1, safe_target.unsqueeze(1)).squeeze(1)  # [N, H, W]
    loss = -((1 - log_p.exp()) ** gamma) * log_p
    if alpha is not None:
        loss = loss * alpha.to(loss.dtype)[safe_target]
    count = valid.sum()
    if count == 0:
        return logits.sum() * 0.0
    return (loss * valid).sum() / count


def soft_dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    ignore_index: int,
    smooth: float = 0.0,
    eps: float = 1e-7,
    squared: bool = False,
    include_background: bool = True,
) -> torch.Tensor:
    """Multiclass soft Dice loss: ``1 - mean_c 2 |P_c T_c| / (|P_c| + |T_c|)`` over the batch.

    ``P_c`` are softmax probabilities and ``T_c`` the one-hot target, summed over all labelled pixels
    (or voxels: any ``[N, K, *spatial]``) of the batch. The mean runs over the classes present in the
    target, so absent classes neither reward nor punish (``smooth`` adds to numerator and denominator).

    ``squared=True`` is V-Net's form (Milletari et al. 2016), ``2 sum p g / (sum p^2 + sum g^2)``;
    ``include_background=False`` leaves class 0 out, as V-Net scores the foreground only.

    Example:
        >>> logits = torch.zeros(1, 2, 1, 2)  # p = 0.5 everywhere; foreground: 2 * 1 / (0.5 + 2)
        >>> void = 255  # the dataset's unlabelled value, DatasetInfo.ignore_index
        >>> round(soft_dice_loss(logits, torch.tensor([[[1, 1]]]), ignore_index=void, squared=True,
        ...                      include_background=False).item(), 4)
        0.2
    """
    num_classes = logits.shape[1]
    valid, safe_target = _valid(target, ignore_index)
    mask = valid.unsqueeze(1)
    probs = logits.softmax(dim=1) * mask
    one_hot = F.one_hot(safe_target, num_classes).movedim(-1, 1).to(probs.dtype) * mask
    dims = (0, *range(2, probs.ndim))
    intersection = (probs * one_hot).sum(dims)
    cardinality = (probs.square().sum(dims) if squared else probs.sum(dims)) + one_hot.sum(dims)
    dice = (2 * intersection + smooth) / (cardinality + smooth).clamp_min(eps)
    present = one_hot.sum(dims) > 0
    if not include_background:
        present[0] = False
    if not present.any():
        return logits.sum() * 0.0
    return 1 - dice[present].mean()
