"""Test-time augmentation: the model sees each input flipped, turned or rescaled, and the class probabilities,
mapped back, are averaged. ``"flip"`` adds the mirror image along the last axis (2 passes); ``"flips"`` every
combination of mirrors along the spatial axes (4 in 2D, 8 in 3D: nnU-Net's); ``"rot90"`` the four quarter
turns (2D); ``"scale=0.75,1,1.25"`` each scale. Groups multiply: ``"flip,rot90"`` is 8 passes.

    >>> [a.name for a in parse_tta("flip,scale=0.5,1", spatial_dims=2)]
    ['scale 0.5', 'identity', 'flip x + scale 0.5', 'flip x']
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from omniseg.errors import ConfigError

Forward = Callable[[torch.Tensor], torch.Tensor]
AXIS_NAMES = "xyz"


@dataclass(frozen=True)
class Augmentation:
    """Mirror ``flips`` (spatial axes counted from the last), turn by ``turns`` quarter turns, rescale by ``scale``."""

    flips: tuple[int, ...] = ()
    turns: int = 0
    scale: float = 1.0

    @property
    def name(self) -> str:
        parts = [f"flip {''.join(AXIS_NAMES[a] for a in self.flips)}"] if self.flips else []
        parts += [f"rot{90 * self.turns}"] if self.turns else []
        parts += [f"scale {self.scale:g}"] if self.scale != 1 else []
        return " + ".join(parts) or "identity"

    def _dims(self, x: torch.Tensor) -> list[int]:
        return [x.ndim - 1 - axis for axis in self.flips]

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """The augmented batch ``[B, C, *spatial]`` (a rescaled integer batch becomes float in 0..1)."""
        if self.flips:
            x = x.flip(self._dims(x))
        if self.turns:
            x = torch.rot90(x, self.turns, dims=(-2, -1))
        if self.scale != 1:
            if not x.is_floating_point():
                x = x.float() / 255  # the predictor reads float input as 0..1
            size = [max(1, round(side * self.scale)) for side in x.shape[2:]]
            x = F.interpolate(x, size=size, mode="bilinear" if x.ndim == 4 else "trilinear", align_corners=False)
        return x

    def invert(self, probabilities: torch.Tensor, spatial: tuple[int, ...]) -> torch.Tensor:
        """Class probabilities of the augmented batch mapped back onto the original ``spatial`` grid."""
        if self.scale != 1:
            size = spatial if not self.turns % 2 else (*spatial[:-2], spatial[-1], spatial[-2])
            probabilities = F.interpolate(probabilities, size=size, mode="bilinear" if probabilities.ndim == 4 else "trilinear",
                                          align_corners=False)
        if self.turns:
            probabilities = torch.rot90(probabilities, -self.turns, dims=(-2, -1))
        if self.flips:
            probabilities = probabilities.flip(self._dims(probabilities))
        return probabilities


def parse_tta(spec: str | None, *, spatial_dims: int = 2) -> list[Augmentation]:
    """The augmentations of a spec such as ``"flip,rot90,scale=0.75,1,1.25"`` (None or "": no augmentation)."""
    flip_sets: list[tuple[int, ...]] = [()]
    turns, scales = [0], [1.0]
    tokens = [t.strip() for t in (spec or "").split(",") if t.strip()]
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token == "flip":
            flip_sets = [(), (0,)]
        elif token == "flips":
            flip_sets = [combo for r in range(spatial_dims + 1) for combo in itertools.combinations(range(spatial_dims), r)]
        elif token == "rot90":
            if spatial_dims != 2:
                raise ConfigError("--tta rot90 turns images; volumes take flip or flips")
            turns = [0, 1, 2, 3]
        elif token.startswith("scale="):
            scales = [float(token.split("=", 1)[1])]
            while index + 1 < len(tokens) and _is_number(tokens[index + 1]):
                index += 1
                scales.append(float(tokens[index]))
            if min(scales) <= 0:
                raise ConfigError(f"--tta scales must be positive, got {scales}")
        else:
            raise ConfigError(f"--tta {token!r} is unknown; use flip, flips, rot90 and scale=a,b,c (e.g. --tta flip,scale=0.75,1,1.25)")
        index += 1
    return [Augmentation(f, t, s) for f in flip_sets for t in turns for s in scales]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_identity(augmentations: list[Augmentation]) -> bool:
    return all(augmentation == Augmentation() for augmentation in augmentations)


def with_tta(forward: Forward, augmentations: list[Augmentation]) -> Forward:
    """``forward`` averaged over ``augmentations`` (each mapped back before the mean)."""
    if _is_identity(augmentations):
        return forward

    def averaged(x: torch.Tensor) -> torch.Tensor:
        spatial = tuple(x.shape[2:])
        total = None
        for augmentation in augmentations:
            probabilities = augmentation.invert(forward(augmentation.apply(x)), spatial)
            total = probabilities if total is None else total + probabilities
        return total / len(augmentations)

    return averaged


@dataclass
class _View:
    """One detection of one augmented view, mapped back: ``mask`` [1, H, W] probabilities, ``binary`` cut at 0.5."""

    score: float
    label: int
    box: torch.Tensor
    mask: torch.Tensor
    binary: torch.Tensor


def _mask_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 0.0


def invert_boxes(boxes: torch.Tensor, augmentation: Augmentation, spatial: tuple[int, int]) -> torch.Tensor:
    """XYXY ``boxes`` found on the augmented image mapped back onto the original ``spatial`` (H, W) grid."""
    height, width = spatial
    boxes = boxes.clone().float()
    frame = (width, height) if augmentation.turns % 2 else (height, width)  # (H, W) before rescaling
    if augmentation.scale != 1:
        scaled = [max(1, round(side * augmentation.scale)) for side in frame]
        boxes[:, 0::2] *= frame[1] / scaled[1]
        boxes[:, 1::2] *= frame[0] / scaled[0]
    for turn in range(augmentation.turns, 0, -1):
        # one counter-clockwise quarter turn (torch.rot90) took (x, y) to (y, W - x), W the width before it
        before_width = width if (turn - 1) % 2 == 0 else height
        x0, y0, x1, y1 = boxes.unbind(1)
        boxes = torch.stack([before_width - y1, x0, before_width - y0, x1], 1)
    if 0 in augmentation.flips:
        boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
    if 1 in augmentation.flips:
        boxes[:, [1, 3]] = height - boxes[:, [3, 1]]
    return boxes


def with_instance_tta(detect: Callable[[torch.Tensor], dict], augmentations: list[Augmentation], *,
                      match_iou: float = 0.5) -> Callable[[torch.Tensor], dict]:
    """``detect(image [C, H, W]) -> {"masks" [N, 1, H, W] probabilities, "labels", "scores", "boxes"}`` run on
    each augmentation, its detections mapped back and merged: detections of one class whose masks overlap by
    more than ``match_iou`` are one object, its mask probabilities and score-weighted box averaged over the
    detections, its score the sum of their scores over the number of augmentations (an object one view alone
    finds counts less)."""
    if _is_identity(augmentations):
        return detect

    def merged(image: torch.Tensor) -> dict:
        spatial = tuple(image.shape[-2:])
        found: list[_View] = []
        for augmentation in augmentations:
            output = detect(augmentation.apply(image[None])[0])
            masks = augmentation.invert(torch.as_tensor(output["masks"]).float(), spatial)
            boxes = invert_boxes(torch.as_tensor(output["boxes"]), augmentation, spatial)
            found += [_View(float(s), int(label), box, mask, mask[0] >= 0.5)
                      for s, label, box, mask in zip(output["scores"], output["labels"], boxes, masks)]
        groups: list[list[_View]] = []  # each object's detections, its best first
        for view in sorted(found, key=lambda v: -v.score):
            group = next((g for g in groups if g[0].label == view.label and _mask_iou(g[0].binary, view.binary) > match_iou), None)
            if group is None:
                groups.append([view])
            else:
                group.append(view)
        if not groups:
            return {"masks": torch.zeros(0, 1, *spatial), "labels": torch.zeros(0, dtype=torch.int64),
                    "scores": torch.zeros(0), "boxes": torch.zeros(0, 4)}
        weights = [torch.tensor([v.score for v in g]) for g in groups]
        return {"masks": torch.stack([torch.stack([v.mask for v in g]).mean(0) for g in groups]),
                "labels": torch.tensor([g[0].label for g in groups]),
                "scores": torch.stack([w.sum() / len(augmentations) for w in weights]),
                "boxes": torch.stack([(torch.stack([v.box for v in g]) * w[:, None]).sum(0) / w.sum() for g, w in zip(groups, weights)])}

    return merged
