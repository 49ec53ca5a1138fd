"""Low-rank adaptation (Hu et al., 2021) for fine-tuning a large encoder on little data: each chosen linear
layer keeps its weight frozen and learns ``W + (alpha / rank) * B @ A`` with ``A`` [rank, in] and ``B`` [out, rank]
(``B`` starts at zero, so training starts from the model as it was). :func:`merge_lora` folds the adapters back
into plain linear layers, so a fine-tuned model saves and loads in the original layout."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn import functional as F

from omniseg.errors import ConfigError


class LoRALinear(nn.Module):
    """A frozen ``base`` linear layer plus a trainable rank-``rank`` update."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base, self.scale = base, alpha / rank
        base.requires_grad_(False)
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, device=base.weight.device))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))  # as nn.Linear initialises its weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + F.linear(F.linear(x, self.lora_a), self.lora_b) * self.scale

    def merged(self) -> nn.Linear:
        """A plain linear layer computing the same function."""
        linear = copy.deepcopy(self.base)
        with torch.no_grad():
            linear.weight += (self.lora_b @ self.lora_a) * self.scale
        return linear.requires_grad_(True)


def add_lora(module: nn.Module, *, rank: int, alpha: float | None = None, targets: tuple[str, ...] = ("qkv",)) -> int:
    """Replace every linear layer of ``module`` whose name is one of ``targets`` (the attention's ``qkv``
    projections by default) with a :class:`LoRALinear`; returns how many were adapted."""
    if rank < 1:
        raise ConfigError(f"the LoRA rank must be a positive integer, got {rank}")
    chosen = [(name, child) for name, child in module.named_modules()
              if isinstance(child, nn.Linear) and name.rsplit(".", 1)[-1] in targets]
    if not chosen:
        raise ConfigError(f"{type(module).__name__} has no linear layers named {', '.join(targets)} to adapt; "
                          "low-rank adaptation applies to transformer encoders (SAM's ViT, TinyViT)")
    for name, linear in chosen:
        parent_name, _, attribute = name.rpartition(".")
        setattr(module.get_submodule(parent_name) if parent_name else module, attribute,
                LoRALinear(linear, rank, float(alpha if alpha is not None else rank)))
    return len(chosen)


def merge_lora(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with every :class:`LoRALinear` folded into a plain linear layer (the original
    layout and state-dict keys); ``module`` itself is left as it is."""
    if not any(isinstance(child, LoRALinear) for child in module.modules()):
        return module
    merged = copy.deepcopy(module)
    for name, child in list(merged.named_modules()):
        if isinstance(child, LoRALinear):
            parent_name, _, attribute = name.rpartition(".")
            setattr(merged.get_submodule(parent_name) if parent_name else merged, attribute, child.merged())
    return merged
