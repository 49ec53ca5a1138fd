"""Measuring what a plan must not guess: a candidate model's training step, and the loader's batch, on this device."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from omniseg.config import RunConfig
from omniseg.core.precision import autocast, float32
from omniseg.data.cache import CachedDataset
from omniseg.data.formats import DataSource
from omniseg.data.batch_augment import split_train_transforms
from omniseg.data.transforms import PadCollate, TransformedDataset
from omniseg.losses import build_loss
from omniseg.models import create_model

TIMED_STEPS = 2  # after one warm-up step; the fastest counts (the least disturbed by the machine)
FLOPS_PER_SECOND = {"cpu": 5e10, "cuda": 5e12}  # for estimates without measuring


@dataclass
class Candidate:
    """A model a plan may choose: registry ``name``, its ``kwargs``, and a ``description`` for the reasons."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""


def _build(candidate: Candidate, channels: int, num_classes: int, detector: bool) -> torch.nn.Module:
    kwargs = dict(candidate.kwargs)
    if not detector:
        kwargs["in_channels"] = channels
    return create_model(candidate.name, num_classes=num_classes, **kwargs)


def step_seconds(candidate: Candidate, *, channels: int, num_classes: int, shape: tuple[int, ...], batch: int,
                 device: str = "cpu", measure: bool = True, detector: bool = False, precision: str = "32-true") -> float:
    """Seconds of one training step (forward, CE + Dice or the detector's losses, backward, fused AdamW) of
    ``candidate`` on ``batch`` random inputs of ``shape`` (H, W or D, H, W), as the engine runs it (channels-last
    for 2D; under autocast for the mixed ``precision`` names, the loss in float32); infinite when the loss is not
    finite. ``measure=False`` estimates it from the forward pass's multiply-adds counted on the meta device."""
    torch.manual_seed(0)
    if not measure:
        return _estimate(candidate, channels, num_classes, shape, batch, device, detector)
    model = _build(candidate, channels, num_classes, detector).to(device).train()
    layout = torch.channels_last if len(shape) == 2 and not detector else torch.contiguous_format
    model = model.to(memory_format=layout)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    if detector:
        images = [torch.rand(3, *shape, device=device) for _ in range(batch)]
        box = torch.tensor([[shape[1] / 4, shape[0] / 4, shape[1] / 2, shape[0] / 2]], device=device)
        masks = torch.zeros(1, *shape, dtype=torch.uint8, device=device)
        masks[:, shape[0] // 4 : shape[0] // 2, shape[1] // 4 : shape[1] // 2] = 1
        targets = [{"boxes": box, "labels": torch.ones(1, dtype=torch.int64, device=device), "masks": masks}
                   for _ in range(batch)]
        if candidate.name == "panoptic_fpn":
            for target in targets:
                target["semantic"] = torch.zeros(shape, dtype=torch.int64, device=device)

        def loss() -> torch.Tensor:
            with autocast(precision, device):
                return sum(model(images, targets).values())
    else:
        x = torch.randn(batch, channels, *shape, device=device).contiguous(memory_format=layout)
        y = torch.randint(0, num_classes, (batch, *shape), device=device)
        criterion = build_loss("ce+dice", ignore_index=-1)

        def loss() -> torch.Tensor:
            with autocast(precision, device):
                logits = model(x)
            with float32(torch.device(device).type):
                return criterion(logits.float(), y)

    times = []
    for _ in range(1 + TIMED_STEPS):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        value = loss()
        if not math.isfinite(value.item()):
            return math.inf
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times[1:])


def _estimate(candidate: Candidate, channels: int, num_classes: int, shape: tuple[int, ...], batch: int, device: str,
              detector: bool) -> float:
    """Three forward passes' worth of operations (forward + backward) at the device's typical rate."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = _build(candidate, channels, num_classes, detector)
        if detector:
            return batch * 3 * 2 * 1e9 * (shape[0] * shape[1]) / 800**2 / FLOPS_PER_SECOND[device] * 20
        x = torch.empty(batch, channels, *shape)
        with FlopCounterMode(display=False) as counter:
            model(x)
    return 3 * counter.get_total_flops() / FLOPS_PER_SECOND[device]


def loader_seconds(config: RunConfig, source: DataSource, *, batches: int = 3) -> float:
    """Seconds the semantic training pipeline of ``config`` takes to make one batch in the main process (both
    halves of :mod:`~omniseg.data.batch_augment`, the batch half on the CPU): the fastest of ``batches`` after a
    first when the images are cached, else the slowest."""
    info = source.info
    dataset = source.dataset("train")
    dataset = CachedDataset(dataset) if config.data.cache else dataset
    per_sample, batch_augment = split_train_transforms(config.data, ignore_index=info.ignore_index)
    pipeline = TransformedDataset(dataset, per_sample)
    collate = PadCollate(ignore_index=info.ignore_index)
    size, times = config.data.batch_size, []
    for batch in range(batches + 1):
        start = time.perf_counter()
        batch_augment(collate([pipeline[(batch * size + i) % len(pipeline)] for i in range(size)]))
        times.append(time.perf_counter() - start)
    return min(times[1:]) if config.data.cache else max(times[1:])
