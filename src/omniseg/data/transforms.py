"""Train and eval pipelines on torchvision.transforms.v2.

Images, masks and boxes move together because they are tv_tensors in one Sample dict; v2 resizes
``Mask`` tensors with nearest-neighbour interpolation, so class ids are never blended.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torchvision import tv_tensors
from torchvision.transforms import v2

from omniseg.data.sample import Sample

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _to_float(mean: Sequence[float], std: Sequence[float]) -> list[v2.Transform]:
    return [
        v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True),
        v2.Normalize(mean=list(mean), std=list(std)),
    ]


def train_transforms(
    *,
    img_size: int,
    scale_range: tuple[float, float] = (0.5, 2.0),
    hflip: bool = True,
    vflip: bool = False,
    color_jitter: float = 0.3,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    ignore_index: int = 255,
) -> v2.Compose:
    """Random rescale relative to ``img_size``, a padded ``img_size`` crop, flips, colour jitter,
    then float conversion and normalisation. Padding is 0 in the image and ``ignore_index`` in the mask.

    Example:
        >>> t = train_transforms(img_size=64)
        >>> out = t({"image": tv_tensors.Image(torch.zeros(3, 50, 70, dtype=torch.uint8)),
        ...          "mask": tv_tensors.Mask(torch.zeros(50, 70, dtype=torch.int64))})
        >>> tuple(out["image"].shape), tuple(out["mask"].shape)
        ((3, 64, 64), (64, 64))
    """
    steps: list[v2.Transform] = [
        v2.ScaleJitter(target_size=(img_size, img_size), scale_range=tuple(scale_range), antialias=True),
        v2.RandomCrop(img_size, pad_if_needed=True, fill={tv_tensors.Image: 0, tv_tensors.Mask: ignore_index}),
    ]
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    if vflip:
        steps.append(v2.RandomVerticalFlip())
    if color_jitter > 0:
        steps.append(v2.ColorJitter(color_jitter, color_jitter, color_jitter, min(color_jitter / 4, 0.5)))
    return v2.Compose(steps + _to_float(mean, std))


def eval_transforms(*, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> v2.Compose:
    """Float conversion and normalisation only: models take any size, so eval keeps the full image."""
    return v2.Compose(_to_float(mean, std))


def semantic_only(sample: Sample) -> Sample:
    """The Sample without instance annotations (cheaper to transform for semantic training)."""
    return {k: v for k, v in sample.items() if k != "instances"}


class TransformedDataset(torch.utils.data.Dataset):
    """``dataset`` with ``transform`` applied to each semantic Sample."""

    def __init__(self, dataset: torch.utils.data.Dataset, transform: v2.Transform) -> None:
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Sample:
        return self.transform(semantic_only(self.dataset[index]))


class PadCollate:
    """Batch Samples of different sizes by padding to the largest: image with 0, mask with ``ignore_index``.

    Returns ``{"image": Tensor[N, C, H, W], "mask": Tensor[N, H, W] (if present), "meta": list[dict],
    "size": Tensor[N, 2]}`` where ``size`` holds each sample's unpadded (H, W).
    """

    def __init__(self, ignore_index: int = 255) -> None:
        self.ignore_index = ignore_index

    def __call__(self, samples: list[Sample]) -> dict:
        height = max(s["image"].shape[-2] for s in samples)
        width = max(s["image"].shape[-1] for s in samples)

        def pad(t: torch.Tensor, value: float) -> torch.Tensor:
            return F.pad(t, (0, width - t.shape[-1], 0, height - t.shape[-2]), value=value)

        batch = {
            "image": torch.stack([pad(s["image"].as_subclass(torch.Tensor), 0) for s in samples]),
            "meta": [s.get("meta", {}) for s in samples],
            "size": torch.tensor([tuple(s["image"].shape[-2:]) for s in samples]),
        }
        if all("mask" in s for s in samples):
            batch["mask"] = torch.stack([pad(s["mask"].as_subclass(torch.Tensor), self.ignore_index) for s in samples])
        return batch
