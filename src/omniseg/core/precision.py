"""Precision chosen by measurement: bfloat16 only where this device computes it faster than float32.

Processors differ: one with AVX512-BF16 or AMX multiplies bfloat16 matrices several times faster than float32, an older
one several times slower. A processor without bfloat16 instructions (:func:`bf16_capable`) keeps float32 without
measuring; on one with them, ``"auto"`` times the work in each precision and picks bfloat16 when it is at least
:data:`BF16_MARGIN` times faster: one matrix product for inference (once per process and device), a few training
steps of the model itself for training (:func:`choose_training_precision`). GPUs follow the usual rules: bfloat16
where supported, else float16 with a gradient scaler.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from functools import cache

import torch

from omniseg.errors import ConfigError

PRECISIONS = ("auto", "32", "bf16")
#: training precisions: Lightning's names, "32" short for "32-true", and "auto"
TRAINING_PRECISIONS = ("auto", "32", "32-true", "bf16-mixed", "16-mixed")
BF16_MARGIN = 1.3


def bf16_capable(device: torch.device | str) -> bool:
    """Whether ``device`` has bfloat16 arithmetic in hardware: a CUDA GPU that supports it, or a processor with
    AVX512-BF16 or AMX (torch's own capability checks). Elsewhere bfloat16 is emulated, and slower than float32."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    checks = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return any(check() for check in checks if check is not None)


@cache
def bf16_speedup(device: torch.device) -> float:
    """How many times faster a 1024x1024 bfloat16 matrix product runs than a float32 one on ``device`` (0 where the
    device has no bfloat16 in hardware)."""
    if not bf16_capable(device):
        return 0.0
    a = torch.randn(1024, 1024, device=device)
    b = a.to(torch.bfloat16)
    try:
        return _fastest_seconds(lambda: a @ a, device, 3) / _fastest_seconds(lambda: b @ b, device, 3)
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


def _fastest_seconds(run: Callable[[], object], device: torch.device, repeats: int) -> float:
    run()  # warm-up: kernels chosen, weights cast
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times)


def choose_inference_precision(precision: str, device: torch.device | str, forward: Callable[[], object], *,
                               repeats: int = 2) -> tuple[str, dict]:
    """``"32"`` or ``"bf16"`` for a model's inference, and why: ``precision`` itself, or for ``"auto"`` float32 on a
    device without bfloat16 in hardware, else the faster of ``forward()`` (one forward pass of the model, at the
    size it will see) timed in each (bfloat16 from :data:`BF16_MARGIN` times faster). Returns
    ``(precision, {"chosen", "reason", "seconds"?})``."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r}: choose auto, 32 or bf16")
    device = torch.device(device)
    if precision != "auto":
        return precision, {"chosen": precision, "reason": "asked for"}
    if not bf16_capable(device):
        return "32", {"chosen": "32", "reason": "no bfloat16 in hardware on this device: float32"}
    with torch.inference_mode():
        seconds = {}
        for name in ("32", "bf16"):
            with autocast(name, device):
                seconds[name] = _fastest_seconds(forward, device, repeats)
    speedup = seconds["32"] / seconds["bf16"]
    chosen = "bf16" if speedup >= BF16_MARGIN else "32"
    return chosen, {"chosen": chosen, "seconds": {k: round(v, 4) for k, v in seconds.items()},
                    "reason": f"a forward pass took {seconds['bf16']:.3f} s in bfloat16 against {seconds['32']:.3f} s in "
                              f"float32 ({speedup:.2f}x; bfloat16 from {BF16_MARGIN}x)"}


#: autocast's type for each mixed precision name (inference's "bf16", Lightning's training names)
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def autocast(precision: str, device: torch.device | str):
    """A context computing in bfloat16 (``"bf16"``, ``"bf16-mixed"``) or float16 (``"16-mixed"``), float32 where
    torch's autocast keeps it; nothing for the float32 names."""
    dtype = AUTOCAST_DTYPES.get(precision)
    return torch.autocast(torch.device(device).type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def float32(device_type: str):
    """A context where autocast is off: losses, metrics and softmaxes computed in float32 inside a mixed-precision
    step (cast their inputs with ``.float()``)."""
    return torch.autocast(device_type, enabled=False)


def choose_training_precision(precision: str, device: torch.device | str,
                              step_seconds: Callable[[str], float]) -> tuple[str, dict]:
    """Lightning's precision for ``precision`` (one of :data:`TRAINING_PRECISIONS`) on ``device``, and why.

    ``"auto"`` on a GPU: ``"bf16-mixed"`` where supported, else ``"16-mixed"`` (with a gradient scaler). On a
    processor: ``"32-true"`` without bfloat16 in hardware; otherwise ``step_seconds("32-true")`` and
    ``step_seconds("bf16-mixed")`` (seconds of a training step in each; infinite when the loss was not finite) decide:
    bfloat16 when at least :data:`BF16_MARGIN` times faster. Returns ``(precision, {"asked", "chosen", "reason",
    "step_seconds": {...}})``.
    """
    if precision not in TRAINING_PRECISIONS:
        raise ConfigError(f"train.precision {precision!r}: choose one of {', '.join(TRAINING_PRECISIONS)}")
    device = torch.device(device)
    if precision != "auto":
        chosen = "32-true" if precision == "32" else precision
        return chosen, {"asked": precision, "chosen": chosen, "reason": "asked for"}
    if device.type == "cuda":
        chosen = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
        return chosen, {"asked": "auto", "chosen": chosen, "reason": "the GPU's " + (
            "bfloat16" if chosen == "bf16-mixed" else "float16 with a gradient scaler (no bfloat16 on this GPU)")}
    if not bf16_capable(device):
        return "32-true", {"asked": "auto", "chosen": "32-true",
                           "reason": "this processor has no bfloat16 instructions (AVX512-BF16 or AMX): float32"}
    times = {name: step_seconds(name) for name in ("32-true", "bf16-mixed")}
    speedup = times["32-true"] / times["bf16-mixed"] if math.isfinite(times["bf16-mixed"]) else 0.0
    chosen = "bf16-mixed" if speedup >= BF16_MARGIN else "32-true"
    if not math.isfinite(times["bf16-mixed"]):
        reason = "the loss was not finite in bfloat16: float32"
    else:
        reason = (f"a bfloat16 step took {times['bf16-mixed']:.3f} s against {times['32-true']:.3f} s in float32 "
                  f"({speedup:.2f}x; bfloat16 from {BF16_MARGIN}x)")
    return chosen, {"asked": "auto", "chosen": chosen, "reason": reason,
                    "step_seconds": {k: round(v, 4) if math.isfinite(v) else None for k, v in times.items()}}
