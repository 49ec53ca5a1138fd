"""Inference precision chosen by measurement: bfloat16 only where this device computes it faster than float32.

Processors differ: one with AVX512-BF16 or AMX multiplies bfloat16 matrices several times faster than float32, an older
one several times slower. ``"auto"`` times one matrix product in each precision on the device (once per process and
device) and picks bfloat16 when it is at least :data:`BF16_MARGIN` times faster.
"""

from __future__ import annotations

import contextlib
import time
from functools import cache

import torch

from omniseg.errors import ConfigError

PRECISIONS = ("auto", "32", "bf16")
BF16_MARGIN = 1.3


def _seconds(a: torch.Tensor, repeats: int = 3) -> float:
    torch.matmul(a, a)  # warm-up
    if a.device.type == "cuda":
        torch.cuda.synchronize(a.device)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.matmul(a, a)
    if a.device.type == "cuda":
        torch.cuda.synchronize(a.device)
    return (time.perf_counter() - start) / repeats


@cache
def bf16_speedup(device: torch.device) -> float:
    """How many times faster a 1024x1024 bfloat16 matrix product runs than a float32 one on ``device`` (0 where the
    device has no bfloat16)."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return 0.0
    a = torch.randn(1024, 1024, device=device)
    try:
        return _seconds(a) / _seconds(a.to(torch.bfloat16))
    except RuntimeError:
        return 0.0


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"32"`` or ``"bf16"``: ``precision`` itself, or for ``"auto"`` bfloat16 when :func:`bf16_speedup` clears the
    margin on ``device``."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r}: choose auto, 32 or bf16")
    if precision == "auto":
        return "bf16" if bf16_speedup(torch.device(device)) >= BF16_MARGIN else "32"
    return precision


def autocast(precision: str, device: torch.device):
    """A context computing in bfloat16 (float32 where torch's autocast keeps it) when ``precision`` is ``"bf16"``."""
    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
