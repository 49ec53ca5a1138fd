"""Measuring models: parameters, FLOPs (torch.utils.flop_counter) and CPU latency."""

from __future__ import annotations

import inspect
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext

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
    if getattr(model, "promptable", False):  # Segment Anything encodes its own fixed square (1024 px)
        side = model.img_size
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


def model_table(names: Sequence[str] | None = None, *, num_classes: int = 21, benchmark: bool = False, size: int = 512,
                volume_size: int = 64, progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """One row per registered model (or per model of ``names``): ``name``, ``task``, ``parameters`` and
    ``description`` at its default configuration; with ``benchmark`` also ``gflops`` and ``latency_ms`` of one
    CPU forward pass (see :func:`profile_model`). Counting alone builds the models on the meta device (no memory)."""
    from omniseg.models.builder import MODELS, create_model

    names = list(MODELS) if names is None else [MODELS.get(n) and n for n in names]
    rows = []
    for done, name in enumerate(names, 1):
        meta = MODELS.meta(name)
        takes_classes = "num_classes" in inspect.signature(MODELS.get(name)).parameters  # promptable models have none
        with nullcontext() if benchmark else torch.device("meta"):
            model = create_model(name, **({"num_classes": num_classes} if takes_classes else {}))
        row = {"name": name, "task": meta.get("task", ""), "parameters": count_parameters(model),
               "description": meta.get("description", "")}
        if benchmark:
            row.update(profile_model(model, size=size, volume_size=volume_size))
        rows.append(row)
        if progress is not None:
            progress(done, len(names))
    return rows


def models_markdown(rows: list[dict], *, num_classes: int, size: int, volume_size: int, command: str) -> str:
    """The benchmarked ``rows`` of :func:`model_table` as the Markdown page ``docs/models.md`` (``command``
    is the line that wrote it)."""
    lines = [
        "# Models",
        "",
        f"Written by `{command}`: default configuration of",
        f"each model, {num_classes} classes, one {size}x{size} image (volumetric models: one "
        f"single-channel {volume_size}^3 volume), eval mode, CPU "
        f"({platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}).",
        "",
        "GFLOPs count a multiply-add as two operations (torch.utils.flop_counter); latency is a median of 3.",
        "",
        "| model | task | parameters | GFLOPs | CPU latency (ms) | description |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        lines.append(f"| `{row['name']}` | {row['task']} | {row['parameters']:,} | {row['gflops']:.1f} | "
                     f"{row['latency_ms']:.0f} | {row['description']} |")
    return "\n".join(lines) + "\n"
