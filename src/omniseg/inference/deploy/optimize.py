"""Inference-time model rewrites that keep outputs the same: BatchNorm folding, channels-last."""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

log = logging.getLogger(__name__)


def _fold_children(module: nn.Module) -> int:
    """Fold each BatchNorm2d into the Conv2d registered right before it; returns how many were folded."""
    folded = 0
    names = list(module._modules)
    for prev_name, name in zip(names, names[1:]):
        conv, bn = module._modules[prev_name], module._modules[name]
        if isinstance(conv, nn.Conv2d) and type(bn) is nn.BatchNorm2d and bn.track_running_stats:
            module._modules[prev_name] = fuse_conv_bn_eval(conv, bn)
            module._modules[name] = nn.Identity()
            folded += 1
    for child in module.children():
        folded += _fold_children(child)
    return folded


def fold_batchnorm(model: nn.Module, example: torch.Tensor, *, atol: float = 1e-3, in_place: bool = False) -> nn.Module | None:
    """An eval-mode copy of ``model`` with BatchNorm layers folded into their convolutions.

    Folding relies on a conv being registered right before the BatchNorm that follows it in the
    forward pass, which holds for omniseg's blocks and for timm backbones. The copy is checked on
    ``example``; if its output differs by more than ``atol`` the unfolded model is returned. ``in_place`` folds
    ``model`` itself (no second copy of the weights in memory) and returns None when the check fails: the
    caller then loads the model again.
    """
    original = model.eval()
    with torch.inference_mode():
        reference = original(example)
    candidate = original if in_place else copy.deepcopy(original)
    count = _fold_children(candidate)
    if count == 0:
        return original
    with torch.inference_mode():
        out = candidate.eval()(example)
    if not torch.allclose(reference, out, atol=atol, rtol=1e-3):
        log.warning("BatchNorm folding changed the output (max diff %.2e); using the unfolded model",
                    (reference - out).abs().max().item())
        return None if in_place else original
    log.debug("folded %d BatchNorm layers", count)
    return candidate
