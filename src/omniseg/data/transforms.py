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


def eval_transforms_for(volumetric: bool, *, mean: Sequence[float] = IMAGENET_MEAN,
                        std: Sequence[float] = IMAGENET_STD):
    """The evaluation pipeline of 2D images (``mean``/``std``) or of volumes (per-volume z-score)."""
    return VolumeTransform() if volumetric else eval_transforms(mean=mean, std=std)


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
    "size": Tensor[N, 2]}`` where ``size`` holds each sample's unpadded (H, W); volumes the same with
    a depth axis (``size`` then holds (D, H, W)).
    """

    def __init__(self, ignore_index: int = 255) -> None:
        self.ignore_index = ignore_index

    def __call__(self, samples: list[Sample]) -> dict:
        spatial = samples[0]["image"].ndim - 1
        target = [max(s["image"].shape[1 + axis] for s in samples) for axis in range(spatial)]

        def pad(t: torch.Tensor, value: float) -> torch.Tensor:
            amounts = [p for axis in reversed(range(spatial)) for p in (0, target[axis] - t.shape[t.ndim - spatial + axis])]
            return F.pad(t, amounts, value=value) if any(amounts) else t

        batch = {
            "image": torch.stack([pad(s["image"].as_subclass(torch.Tensor), 0) for s in samples]),
            "meta": [s.get("meta", {}) for s in samples],
            "size": torch.tensor([tuple(s["image"].shape[1:]) for s in samples]),
        }
        if all("mask" in s for s in samples):
            batch["mask"] = torch.stack([pad(s["mask"].as_subclass(torch.Tensor), self.ignore_index) for s in samples])
        return batch


class VolumeTransform:
    """Volumes ``[C, D, H, W]``: per-channel z-score normalisation (nnU-Net's default for MR), and for
    training a random ``patch_size`` crop (padded with 0 / ``ignore_index`` where the volume is smaller)
    and random flips along each axis. The mask moves with the image."""

    def __init__(self, patch_size: Sequence[int] | None = None, *, flip: bool = False, ignore_index: int = 255,
                 seed: int | None = None) -> None:
        self.patch_size = tuple(patch_size) if patch_size is not None else None
        if self.patch_size is not None and (len(self.patch_size) != 3 or min(self.patch_size) < 1):
            raise ValueError(f"patch_size must be three positive sides (D, H, W), got {patch_size}")
        self.flip, self.ignore_index = flip, ignore_index
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None

    def _randint(self, high: int) -> int:
        return int(torch.randint(high, (1,), generator=self.generator)) if high > 1 else 0

    def __call__(self, sample: Sample) -> Sample:
        image = sample["image"].as_subclass(torch.Tensor).float()
        mask = sample["mask"].as_subclass(torch.Tensor) if "mask" in sample else None
        mean = image.mean(dim=(1, 2, 3), keepdim=True)
        std = image.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
        image = (image - mean) / std
        if self.patch_size is not None:
            grow = [p for side, want in zip(reversed(image.shape[1:]), reversed(self.patch_size)) for p in (0, max(want - side, 0))]
            if any(grow):
                image = F.pad(image, grow)
                mask = F.pad(mask, grow, value=self.ignore_index) if mask is not None else None
            starts = [self._randint(side - want + 1) for side, want in zip(image.shape[1:], self.patch_size)]
            window = tuple(slice(s, s + w) for s, w in zip(starts, self.patch_size))
            image = image[(slice(None), *window)]
            mask = mask[window] if mask is not None else None
        if self.flip:
            axes = [axis for axis in range(3) if self._randint(2)]
            if axes:
                image = image.flip([a + 1 for a in axes])
                mask = mask.flip(axes) if mask is not None else None
        out = {**sample, "image": tv_tensors.Image(image.contiguous())}
        if mask is not None:
            out["mask"] = tv_tensors.Mask(mask.contiguous())
        return out
