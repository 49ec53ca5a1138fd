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

from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.ops import masks_to_boxes

from omniseg.core.info import DatasetInfo, default_palette

Sample = dict[str, Any]

# the mask value of unlabelled pixels where a format does not say otherwise (VOC's void, Cityscapes' ignore)
DEFAULT_IGNORE_INDEX = 255

__all__ = ["DEFAULT_IGNORE_INDEX", "DatasetInfo", "Sample", "default_palette", "make_sample"]


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
