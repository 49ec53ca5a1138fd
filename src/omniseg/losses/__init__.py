"""Losses: a functional core with thin module wrappers, combined by config (``"ce+dice"``)."""

from omniseg.core.class_balance import median_frequency_weights
from omniseg.losses.builder import LOSSES, build_loss, parse_loss_spec
from omniseg.losses.functional import (
    binary_dice_loss, binary_focal_loss, cross_entropy, focal_loss, lovasz_softmax_loss, ohem_cross_entropy, soft_dice_loss, tversky_loss,
)
from omniseg.losses.modules import (
    CrossEntropyLoss, DiceLoss, FocalLoss, LovaszSoftmaxLoss, OhemCrossEntropyLoss, TverskyLoss, WeightedSumLoss,
)

__all__ = [
    "LOSSES",
    "CrossEntropyLoss",
    "DiceLoss",
    "FocalLoss",
    "LovaszSoftmaxLoss",
    "OhemCrossEntropyLoss",
    "TverskyLoss",
    "WeightedSumLoss",
    "binary_dice_loss",
    "binary_focal_loss",
    "build_loss",
    "cross_entropy",
    "focal_loss",
    "lovasz_softmax_loss",
    "ohem_cross_entropy",
    "median_frequency_weights",
    "parse_loss_spec",
    "soft_dice_loss",
    "tversky_loss",
]
