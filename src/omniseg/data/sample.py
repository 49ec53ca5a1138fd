"""The Sample contract and DatasetInfo.

A **Sample** is what every format reader yields and every transform takes: a dict of
torchvision tv_tensors::

    {
        "image": tv_tensors.Image,   # uint8 or float [C, H, W]  ([C, D, H, W] for volumes)
        "mask": tv_tensors.Mask,     # int64 [H, W] class ids, ignore_index where unlabeled
        "instances": {"masks": Mask[N, H, W] bool, "labels": int64[N], "boxes": BoundingBoxes[N, 4] XYXY},
        "meta": {"id": str, "path": str, "orig_size": (H, W)},
    }

A reader fills what its format has; ``image`` and ``meta`` are always there. Formats with several
human segmentations and no classes (BSDS) give ``segmentations`` (Mask ``[A, H, W]`` region ids, one
per annotator) and ``boundaries`` (Mask ``[A, H, W]`` bool) instead of ``mask``.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.ops import masks_to_boxes

Sample = dict[str, Any]

DEFAULT_IGNORE_INDEX = 255


def default_palette(num_classes: int) -> list[tuple[int, int, int]]:
    """Distinct colours: black for class 0, then evenly spaced hues at two brightness levels.

    Example:
        >>> default_palette(3)[0]
        (0, 0, 0)
    """
    colours = [(0, 0, 0)]
    for i in range(1, num_classes):
        hue = ((i - 1) * 0.618033988749895) % 1.0  # golden-ratio steps keep neighbours apart
        value = 0.95 if i % 2 else 0.7
        r, g, b = colorsys.hsv_to_rgb(hue, 0.85, value)
        colours.append((round(r * 255), round(g * 255), round(b * 255)))
    return colours


@dataclass
class DatasetInfo:
    """What a model needs to know about its dataset's classes.

    Args:
        class_names: one name per class id ``0..K-1``.
        palette: one RGB colour per class (defaults to :func:`default_palette`).
        ignore_index: the mask value of unlabeled pixels.
        things: ids of countable classes (instances); the others are stuff.
    """

    class_names: list[str]
    palette: list[tuple[int, int, int]] = field(default_factory=list)
    ignore_index: int = DEFAULT_IGNORE_INDEX
    things: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.class_names = [str(n) for n in self.class_names]
        if not self.palette:
            self.palette = default_palette(self.num_classes)
        self.palette = [tuple(int(c) for c in colour) for colour in self.palette]
        if len(self.palette) < self.num_classes:
            self.palette += default_palette(self.num_classes)[len(self.palette):]
        if 0 <= self.ignore_index < self.num_classes:
            raise ValueError(
                f"ignore_index {self.ignore_index} is also class {self.class_names[self.ignore_index]!r}; "
                "choose an ignore_index outside 0..K-1 (255 is the usual one)"
            )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def stuff(self) -> list[int]:
        return [i for i in range(self.num_classes) if i not in self.things]

    def to_dict(self) -> dict[str, Any]:
        return {
            "class_names": list(self.class_names),
            "palette": [list(c) for c in self.palette[: self.num_classes]],
            "ignore_index": self.ignore_index,
            "things": list(self.things),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DatasetInfo:
        return cls(
            class_names=list(values["class_names"]),
            palette=[tuple(c) for c in values.get("palette", [])],
            ignore_index=int(values.get("ignore_index", DEFAULT_IGNORE_INDEX)),
            things=list(values.get("things", [])),
        )


def make_sample(
    image: torch.Tensor | np.ndarray,
    *,
    mask: torch.Tensor | np.ndarray | None = None,
    instance_masks: np.ndarray | torch.Tensor | None = None,
    instance_labels: np.ndarray | torch.Tensor | list[int] | None = None,
    sample_id: str = "",
    path: str = "",
) -> Sample:
    """Build a Sample from arrays: ``image`` HxWxC numpy or CxHxW tensor, ``mask`` HxW class ids,
    ``instance_masks`` NxHxW bool with ``instance_labels`` N (boxes are derived from the masks)."""
    if isinstance(image, np.ndarray):
        array = image[..., None] if image.ndim == 2 else image
        image = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
    height, width = image.shape[-2:]
    sample: Sample = {
        "image": tv_tensors.Image(image),
        "meta": {"id": sample_id, "path": path, "orig_size": (int(height), int(width))},
    }
    if mask is not None:
        sample["mask"] = tv_tensors.Mask(torch.as_tensor(np.asarray(mask), dtype=torch.int64))
    if instance_masks is not None:
        masks = torch.as_tensor(np.asarray(instance_masks), dtype=torch.bool).reshape(-1, height, width)
        labels = torch.as_tensor(np.asarray(instance_labels if instance_labels is not None else []), dtype=torch.int64)
        boxes = masks_to_boxes(masks) if len(masks) else torch.zeros((0, 4))
        sample["instances"] = {
            "masks": tv_tensors.Mask(masks),
            "labels": labels,
            "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(height, width)),
        }
    return sample
