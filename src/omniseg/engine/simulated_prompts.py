"""The person Segment Anything was trained with (Kirillov et al., 2023, appendix A), simulated on a batch of
object masks: a first prompt (a point drawn uniformly inside the object, or its box with each coordinate jittered
by 10% of the box's side, at most 20 px of SAM's 1024 px frame), then corrective clicks drawn uniformly from the
error region of the previous mask (positive in a missed pixel, negative in a wrong one).

Masks are ``[N, L, L]`` bool at the loss resolution ``L``; prompts come out in the model's input frame of side
``frame`` (pixels, x before y), as :class:`~omniseg.models.promptable.prompt_encoder.PromptEncoder` takes them.
"""

from __future__ import annotations

import torch


def uniform_pixels(region: torch.Tensor) -> torch.Tensor:
    """One pixel drawn uniformly from each non-empty ``region`` ``[N, H, W]`` (bool): ``[N, 2]`` as (row, column)."""
    weights = region.flatten(1).float()
    index = torch.multinomial(weights, 1)[:, 0]
    width = region.shape[-1]
    return torch.stack([index // width, index % width], dim=1)


def to_frame(cells: torch.Tensor, size: int, frame: int) -> torch.Tensor:
    """(row, column) cells of a ``size`` grid -> (x, y) pixel coordinates of their centres in a ``frame`` grid."""
    scale = frame / size
    return (cells.flip(-1).float() + 0.5) * scale - 0.5


def first_points(truth: torch.Tensor, frame: int) -> torch.Tensor:
    """A point drawn uniformly inside each object: ``[N, 1, 2]`` (x, y) in the input frame."""
    return to_frame(uniform_pixels(truth), truth.shape[-1], frame)[:, None]


def jittered_boxes(truth: torch.Tensor, frame: int, *, noise: float = 0.1, max_pixels: float = 20.0) -> torch.Tensor:
    """Each object's box ``[N, 4]`` (x0, y0, x1, y1 in the input frame) with every coordinate moved by a normal
    draw of std ``noise`` times the box's side, at most ``max_pixels`` (of a 1024 px frame, scaled to ``frame``);
    kept inside the frame and at least one pixel wide."""
    scale = frame / truth.shape[-1]
    rows, cols = truth.any(2), truth.any(1)
    span = torch.arange(truth.shape[-1], device=truth.device)
    big = truth.shape[-1]
    y0 = torch.where(rows, span, big).amin(1)
    y1 = torch.where(rows, span, -1).amax(1) + 1
    x0 = torch.where(cols, span, big).amin(1)
    x1 = torch.where(cols, span, -1).amax(1) + 1
    boxes = torch.stack([x0, y0, x1, y1], dim=1).float() * scale
    sides = torch.stack([x1 - x0, y1 - y0, x1 - x0, y1 - y0], dim=1).float() * scale
    limit = max_pixels * frame / 1024
    boxes = boxes + (torch.randn_like(boxes) * noise * sides).clamp(-limit, limit)
    boxes = boxes.clamp(0, frame)
    boxes[:, 2:] = torch.maximum(boxes[:, 2:], boxes[:, :2] + 1).clamp(max=frame)
    boxes[:, :2] = torch.minimum(boxes[:, :2], boxes[:, 2:] - 1)
    return boxes


def corrective_clicks(prediction: torch.Tensor, truth: torch.Tensor, frame: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The next click on each object: a pixel drawn uniformly from the error region of ``prediction`` (bool
    ``[N, L, L]``), positive where the object was missed, negative where the mask is wrong; an object already
    perfect gets a positive click inside it. Returns points ``[N, 1, 2]`` (input frame) and labels ``[N, 1]``."""
    error = prediction != truth
    region = torch.where(error.flatten(1).any(1)[:, None, None], error, truth)
    cells = uniform_pixels(region)
    labels = truth[torch.arange(len(truth), device=truth.device), cells[:, 0], cells[:, 1]].long()
    return to_frame(cells, truth.shape[-1], frame)[:, None], labels[:, None]
