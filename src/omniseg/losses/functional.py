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


def _probabilities_and_one_hot(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax probabilities and the one-hot target ``[N, K, *spatial]``, both zero on ignored pixels."""
    valid, safe_target = _valid(target, ignore_index)
    mask = valid.unsqueeze(1)
    probs = logits.softmax(dim=1) * mask
    one_hot = F.one_hot(safe_target, logits.shape[1]).movedim(-1, 1).to(probs.dtype) * mask
    return probs, one_hot


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
    probs, one_hot = _probabilities_and_one_hot(logits, target, ignore_index)
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


def tversky_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    ignore_index: int,
    alpha: float = 0.3,
    beta: float = 0.7,
    gamma: float = 1.0,
    smooth: float = 0.0,
    eps: float = 1e-7,
) -> torch.Tensor:
    """Tversky loss (Salehi et al., 2017), focal with ``gamma != 1`` (Abraham and Khan, 2019).

    Per class ``TI_c = TP / (TP + alpha FP + beta FN)`` with soft counts over the batch's labelled pixels
    (``TP = sum p g``, ``FP = sum p (1 - g)``, ``FN = sum (1 - p) g``); the loss is the mean of
    ``(1 - TI_c) ** gamma`` over the classes present in the target. ``alpha = beta = 0.5`` is soft Dice;
    ``beta > alpha`` (0.7 / 0.3, the paper's) costs missed pixels more than false alarms, for small structures;
    ``gamma < 1`` (0.75) keeps the gradient up on classes that are already good.

    Example:
        >>> logits = torch.zeros(1, 2, 1, 2)  # p = 0.5; class 1 on both pixels: TP 1, FP 0, FN 1
        >>> void = 255  # the dataset's unlabelled value, DatasetInfo.ignore_index
        >>> round(tversky_loss(logits, torch.tensor([[[1, 1]]]), ignore_index=void, alpha=0.3, beta=0.7).item(), 4)
        0.4118
    """
    probs, one_hot = _probabilities_and_one_hot(logits, target, ignore_index)
    dims = (0, *range(2, probs.ndim))
    tp = (probs * one_hot).sum(dims)
    fp = (probs * (1 - one_hot)).sum(dims)
    fn = ((1 - probs) * one_hot).sum(dims)
    index = (tp + smooth) / (tp + alpha * fp + beta * fn + smooth).clamp_min(eps)
    present = one_hot.sum(dims) > 0
    if not present.any():
        return logits.sum() * 0.0
    return ((1 - index[present]).clamp_min(0) ** gamma).mean()


def lovasz_softmax_loss(logits: torch.Tensor, target: torch.Tensor, *, ignore_index: int) -> torch.Tensor:
    """Lovasz-softmax loss (Berman et al., 2018): the Lovasz extension of each class's Jaccard loss, a tight
    convex surrogate of ``1 - IoU``, averaged over the classes present in the batch's labelled pixels.

    Per class, the pixels' errors ``|g - p_c|`` are sorted in decreasing order and weighted by the gradient of
    the Jaccard loss along that order: ``J(i) - J(i - 1)`` with ``J(i) = 1 - |G - top_i| / |G + top_i|``
    (``top_i`` the first ``i`` pixels of the order taken as predicted).

    Example:
        >>> logits = torch.tensor([[[[9.0, -9.0]], [[-9.0, 9.0]]]])  # confidently right: loss near 0
        >>> void = 255  # the dataset's unlabelled value, DatasetInfo.ignore_index
        >>> lovasz_softmax_loss(logits, torch.tensor([[[0, 1]]]), ignore_index=void).item() < 1e-6
        True
    """
    num_classes = logits.shape[1]
    probs = logits.softmax(dim=1).movedim(1, -1).reshape(-1, num_classes)
    labels = target.reshape(-1)
    valid = labels != ignore_index
    probs, labels = probs[valid], labels[valid]
    losses = []
    for c in range(num_classes):
        fg = (labels == c).to(probs.dtype)
        if fg.sum() == 0:
            continue
        errors, order = (fg - probs[:, c]).abs().sort(descending=True)
        fg_sorted = fg[order]
        truth = fg_sorted.sum()
        jaccard = 1 - (truth - fg_sorted.cumsum(0)) / (truth + (1 - fg_sorted).cumsum(0))
        jaccard = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
        losses.append(torch.dot(errors, jaccard))
    if not losses:
        return logits.sum() * 0.0
    return torch.stack(losses).mean()


def ohem_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    ignore_index: int,
    threshold: float = 0.7,
    min_kept: int = 100_000,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross entropy with online hard example mining (Shrivastava et al., 2016; as mmsegmentation samples pixels):
    the mean over the labelled pixels whose true-class probability is under ``threshold``, and at least the
    ``min_kept`` hardest (all, when fewer are labelled). Easy pixels, the bulk of most images, stop
    drowning the hard ones. ``weight`` [K] weighs pixels by class, as in :func:`cross_entropy`.

    Example:
        >>> logits = torch.log(torch.tensor([[[[0.9, 0.6]], [[0.1, 0.4]]]]))  # p(class 0) = 0.9 and 0.6
        >>> void = 255  # the dataset's unlabelled value, DatasetInfo.ignore_index
        >>> round(ohem_cross_entropy(logits, torch.tensor([[[0, 0]]]), ignore_index=void, min_kept=1).item(), 4)  # -log 0.6
        0.5108
    """
    valid, safe_target = _valid(target, ignore_index)
    pixel_loss = F.cross_entropy(logits, safe_target, weight=weight, reduction="none")[valid]
    if pixel_loss.numel() == 0:
        return logits.sum() * 0.0
    with torch.no_grad():
        true_probability = logits.softmax(1).gather(1, safe_target.unsqueeze(1)).squeeze(1)[valid]
        hard = true_probability < threshold
        kept = min(int(min_kept), pixel_loss.numel())
        if int(hard.sum()) < kept:  # the min_kept hardest pixels instead
            hard = torch.zeros_like(hard)
            hard[true_probability.topk(kept, largest=False).indices] = True
    if weight is not None:
        pixel_weight = weight.to(pixel_loss.dtype)[safe_target[valid]][hard]
        return pixel_loss[hard].sum() / pixel_weight.sum().clamp_min(1e-12)
    return pixel_loss[hard].mean()


def binary_focal_loss(logits: torch.Tensor, target: torch.Tensor, *, gamma: float = 2.0, alpha: float | None = 0.25) -> torch.Tensor:
    """Sigmoid focal loss (Lin et al., 2017) of mask logits ``[..., H, W]`` against 0..1 targets of the same shape
    (broadcast), the mean over each mask's pixels: ``[...]``, one value a mask."""
    probability = logits.sigmoid()
    bce = F.binary_cross_entropy_with_logits(logits, target.expand_as(logits), reduction="none")
    p_t = probability * target + (1 - probability) * (1 - target)
    loss = bce * (1 - p_t) ** gamma
    if alpha is not None:
        loss = loss * (alpha * target + (1 - alpha) * (1 - target))
    return loss.flatten(-2).mean(-1)


def binary_dice_loss(logits: torch.Tensor, target: torch.Tensor, *, smooth: float = 1.0) -> torch.Tensor:
    """Soft Dice loss of mask logits ``[..., H, W]`` against 0..1 targets (broadcast), one value a mask:
    ``1 - (2 |P T| + smooth) / (|P| + |T| + smooth)`` with sigmoid probabilities ``P``."""
    probability = logits.sigmoid().flatten(-2)
    target = target.expand_as(logits).flatten(-2)
    return 1 - (2 * (probability * target).sum(-1) + smooth) / (probability.sum(-1) + target.sum(-1) + smooth)
