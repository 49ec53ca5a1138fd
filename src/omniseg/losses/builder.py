"""Losses by name, and sums of them from a spec like ``"ce+dice"`` or ``"1.0*ce+0.5*dice"``."""

from __future__ import annotations

import torch
from torch import nn

from omniseg.errors import ConfigError
from omniseg.losses.modules import (
    CrossEntropyLoss, DiceLoss, FocalLoss, LovaszSoftmaxLoss, OhemCrossEntropyLoss, TverskyLoss, WeightedSumLoss,
)
from omniseg.registry import Registry

LOSSES: Registry = Registry("loss")
LOSSES.add("ce", lambda w, opts: CrossEntropyLoss(weight=w, ignore_index=opts["ignore_index"], label_smoothing=opts["label_smoothing"]))
LOSSES.add("focal", lambda w, opts: FocalLoss(gamma=opts["focal_gamma"], weight=w, ignore_index=opts["ignore_index"]))
LOSSES.add("dice", lambda w, opts: DiceLoss(ignore_index=opts["ignore_index"]))
LOSSES.add("vnet_dice", lambda w, opts: DiceLoss(ignore_index=opts["ignore_index"], squared=True, include_background=False))
LOSSES.add("tversky", lambda w, opts: TverskyLoss(ignore_index=opts["ignore_index"], alpha=opts["tversky_alpha"], beta=opts["tversky_beta"]))
LOSSES.add("focal_tversky", lambda w, opts: TverskyLoss(ignore_index=opts["ignore_index"], alpha=opts["tversky_alpha"],
                                                         beta=opts["tversky_beta"], gamma=opts["tversky_gamma"]))
LOSSES.add("lovasz", lambda w, opts: LovaszSoftmaxLoss(ignore_index=opts["ignore_index"]))
LOSSES.add("ohem", lambda w, opts: OhemCrossEntropyLoss(ignore_index=opts["ignore_index"], threshold=opts["ohem_threshold"],
                                                         min_kept=opts["ohem_min_kept"], weight=w))


def parse_loss_spec(spec: str) -> list[tuple[float, str]]:
    """``"ce+0.5*dice"`` -> ``[(1.0, "ce"), (0.5, "dice")]``."""
    terms = []
    for part in spec.replace(" ", "").split("+"):
        weight, _, name = part.rpartition("*")
        try:
            terms.append((float(weight) if weight else 1.0, name))
        except ValueError:
            raise ConfigError(f"loss term {part!r} in {spec!r} is not NAME or WEIGHT*NAME") from None
        LOSSES.get(name)
    if not terms or any(not name for _, name in terms):
        raise ConfigError(f"loss {spec!r} is empty; use e.g. 'ce', 'focal' or 'ce+dice'")
    return terms


def build_loss(
    spec: str,
    *,
    class_weights: torch.Tensor | None = None,
    ignore_index: int,
    label_smoothing: float = 0.0,
    focal_gamma: float = 2.0,
    tversky_alpha: float = 0.3,
    tversky_beta: float = 0.7,
    tversky_gamma: float = 0.75,
    ohem_threshold: float = 0.7,
    ohem_min_kept: int = 100_000,
) -> nn.Module:
    """The loss named by ``spec``: one term, or a :class:`WeightedSumLoss` of several.

    Example:
        >>> void = 255  # the dataset's unlabelled value, DatasetInfo.ignore_index
        >>> build_loss("ce+0.5*dice", ignore_index=void).weights
        {'ce': 1.0, 'dice': 0.5}
    """
    options = {"ignore_index": ignore_index, "label_smoothing": label_smoothing, "focal_gamma": focal_gamma,
               "tversky_alpha": tversky_alpha, "tversky_beta": tversky_beta, "tversky_gamma": tversky_gamma,
               "ohem_threshold": ohem_threshold, "ohem_min_kept": ohem_min_kept}
    terms = parse_loss_spec(spec)
    if len(terms) == 1 and terms[0][0] == 1.0:
        return LOSSES.get(terms[0][1])(class_weights, options)
    return WeightedSumLoss({name: (w, LOSSES.get(name)(class_weights, options)) for w, name in terms})
