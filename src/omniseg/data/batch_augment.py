"""Semantic training's augmentation in two halves: what changes a sample's size per sample, the rest on the batch.

The per-sample half (:func:`sample_steps`) converts channels, takes the scale-jittered crop
(:class:`~omniseg.data.transforms.ScaleJitterCrop`) and draws the flips, quarter turns and colour jitter of the
sample exactly as the one-sample pipeline (:func:`~omniseg.data.transforms.train_transforms`) draws them, in the same
order from the same random stream, storing the draws under ``"augment"`` instead of applying them. The batch half
(:class:`BatchAugment`) applies them to the whole batch at once, on the device the model runs on: flips and turns by
groups of samples that drew the same symmetry, the colour jitter as one batched matrix product, then the
normalisation. The result equals the one-sample pipeline's, sample for sample (a test checks it), at a fraction of
the per-sample Python work that kept the training loop waiting.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from omniseg.data.sample import Sample
from omniseg.data.transforms import ColourJitterNormalize, MatchChannels, RandomFlipRotate, ScaleJitterCrop

#: the columns of a sample's ``"augment"`` draws
DRAWS = ("hflip", "vflip", "turns", "brightness", "contrast", "saturation", "hue")


class DrawAugmentation:
    """The per-sample step that draws (never applies) the flips, turns and colour jitter: ``sample["augment"]`` is a
    float32 tensor of :data:`DRAWS`."""

    def __init__(self, flip_rotate: RandomFlipRotate, colour: ColourJitterNormalize) -> None:
        self.flip_rotate, self.colour = flip_rotate, colour
        self.generator: torch.Generator | None = None

    def __call__(self, sample: Sample) -> Sample:
        self.flip_rotate.generator = self.colour.generator = self.generator
        flips = self.flip_rotate
        # drawn only where the one-sample pipeline has the step, so both take the same numbers from the stream
        geometry = flips.make_params([]) if flips.hflip or flips.vflip or flips.rot90 else {"hflip": False, "vflip": False, "turns": 0}
        colour = self.colour.make_params([])
        values = [float(geometry["hflip"]), float(geometry["vflip"]), float(geometry["turns"])]
        values += [colour[name] for name in DRAWS[3:]]
        return {**sample, "augment": torch.tensor(values, dtype=torch.float32)}


def sample_steps(*, img_size: int, scale_range: tuple[float, float], fit: bool, channels: int | None, ignore_index: int,
                 hflip: bool, vflip: bool, rot90: bool, color_jitter: float) -> v2.Compose:
    """The per-sample half: channels, the padded scale-jittered crop (padding 0 in the image, ``ignore_index`` in the
    mask; the image keeps its dtype), and the draws of the batch half."""
    steps: list = [MatchChannels(channels)] if channels else []
    steps.append(ScaleJitterCrop(img_size, scale_range, fill={tv_tensors.Image: 0, tv_tensors.Mask: ignore_index}, fit=fit))
    flip_rotate = RandomFlipRotate(hflip=hflip, vflip=vflip, rot90=rot90)
    steps.append(DrawAugmentation(flip_rotate, ColourJitterNormalize(color_jitter, min(color_jitter / 4, 0.5), (0.0,), (1.0,))))
    return v2.Compose(steps)


class BatchAugment:
    """The batch half: ``batch["image"]`` ``[N, C, H, W]`` (uint8, or float in 0..1) and ``batch["mask"]`` flipped and
    turned as each sample's ``batch["augment"]`` says, colour-jittered (3-channel images), converted to float32 and
    normalised by ``mean``/``std``; the draws are removed from the batch. Runs on the batch's device."""

    def __init__(self, *, color_jitter: float, mean: Sequence[float], std: Sequence[float]) -> None:
        self.jitter, self.hue = float(color_jitter), min(float(color_jitter) / 4, 0.5)
        self.mean, self.std = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)

    def __call__(self, batch: dict) -> dict:
        draws = batch.pop("augment").to(batch["image"].device)
        images = batch["image"].as_subclass(torch.Tensor)
        x = images.to(torch.float32)
        x = x.div_(255) if images.dtype == torch.uint8 else x
        masks = batch["mask"].as_subclass(torch.Tensor) if "mask" in batch else None
        geometry = draws[:, :3].to(torch.int64)
        if geometry.any():
            x, masks = x.clone(), None if masks is None else masks.clone()
            for key in torch.unique(geometry, dim=0).tolist():
                if not any(key):
                    continue
                rows = (geometry == torch.tensor(key, device=geometry.device)).all(1).nonzero()[:, 0]
                x[rows] = _flip_turn(x[rows], key)
                if masks is not None:
                    masks[rows] = _flip_turn(masks[rows], key)
        n, channels = x.shape[:2]
        if channels == 3 and (self.jitter or self.hue):
            pixels = x.reshape(n, 3, -1)
            mean_grey = ColourJitterNormalize.GREY.to(x.device) @ pixels.mean(dim=2).T
            matrix, offset = ColourJitterNormalize.colour_maps(*draws[:, 3:].T, mean_grey)
            x = torch.baddbmm(offset, matrix, pixels).clamp_(0, 1).reshape(x.shape)
        mean, std = self.mean.to(x.device).view(1, -1, 1, 1), self.std.to(x.device).view(1, -1, 1, 1)
        batch["image"] = (x - mean) / std
        if masks is not None:
            batch["mask"] = masks
        return batch


def _flip_turn(t: torch.Tensor, key: Sequence[int]) -> torch.Tensor:
    hflip, vflip, turns = key
    dims = [d for d, flip in ((-1, hflip), (-2, vflip)) if flip]
    t = t.flip(dims) if dims else t
    return torch.rot90(t, turns, dims=(-2, -1)) if turns else t


def split_train_transforms(data, *, ignore_index: int) -> tuple[v2.Compose, BatchAugment]:
    """The two halves of the training pipeline of a data config (fields of ``omniseg.config.DataConfig``)."""
    per_sample = sample_steps(img_size=data.img_size, scale_range=data.scale_range, fit=data.fit_to_crop,
                              channels=data.channels, ignore_index=ignore_index, hflip=data.hflip, vflip=data.vflip,
                              rot90=data.rot90, color_jitter=data.color_jitter)
    return per_sample, BatchAugment(color_jitter=data.color_jitter, mean=data.mean, std=data.std)
