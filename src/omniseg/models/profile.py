"""Measuring models: parameters, FLOPs (torch.utils.flop_counter) and CPU latency."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from omniseg.models.semantic.base import is_volumetric


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def example_input(model: nn.Module, height: int = 256, width: int = 256, depth: int = 32) -> torch.Tensor:
    """A seeded random input of the shape ``model`` takes: ``[1, C, H, W]``, or ``[1, C, D, H, W]`` for
    volumetric models; ``C`` is read from the model's first convolution."""
    in_channels = next(m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))).in_channels
    spatial = (depth, height, width) if is_volumetric(model) else (height, width)
    return torch.randn(1, in_channels, *spatial, generator=torch.Generator().manual_seed(0))


@torch.inference_mode()
def profile_model(model: nn.Module, *, size: int = 512, volume_size: int = 64, repeats: int = 3) -> dict:
    """``{"parameters", "gflops", "latency_ms"}`` of one forward pass on a ``[1, C, size, size]`` input
    (volumetric models: ``[1, C, volume_size, volume_size, volume_size]``) in eval mode (GFLOPs count a
    multiply-add as 2 operations; latency is the median of ``repeats``)."""
    model = model.eval()
    side = volume_size if is_volumetric(model) else size
    x = example_input(model, side, side, side)
    counter = FlopCounterMode(display=False)
    with counter:
        model(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - start)
    return {
        "parameters": count_parameters(model),
        "gflops": counter.get_total_flops() / 1e9,
        "latency_ms": statistics.median(times) * 1e3,
    }
