"""Measuring models: parameters, FLOPs (torch.utils.flop_counter) and CPU latency."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.inference_mode()
def profile_model(model: nn.Module, *, size: int = 512, in_channels: int = 3, repeats: int = 3) -> dict:
    """``{"parameters", "gflops", "latency_ms"}`` of one forward pass on a ``[1, C, size, size]`` input
    in eval mode (GFLOPs count a multiply-add as 2 operations; latency is the median of ``repeats``)."""
    model = model.eval()
    x = torch.randn(1, in_channels, size, size)
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
