"""Train and eval pipelines on torchvision.transforms.v2.

Images, masks and boxes move together because they are tv_tensors in one Sample dict; v2 resizes
``Mask`` tensors with nearest-neighbour interpolation, so class ids are never blended.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torchvision import tv_tensors
from torchvision.ops import masks_to_boxes
from torchvision.transforms import v2

from omniseg.core.normalisation import IMAGENET_MEAN, IMAGENET_STD
from omniseg.data.sample import Sample
from omniseg.errors import DataError


def match_channels(image: torch.Tensor, channels: int | None) -> torch.Tensor:
    """``image [..., C, H, W]`` with ``channels`` channels: RGB to grey by luminance (ITU-R 601, exact for the
    grey images that readers give as three equal channels), grey to RGB by repetition; unchanged otherwise."""
    have = image.shape[-3]
    if channels is None or channels == have:
        return image
    if have == 3 and channels == 1:
        return v2.functional.rgb_to_grayscale(image)
    if have == 1:
        return image.expand(*image.shape[:-3], channels, *image.shape[-2:])
    raise DataError(f"an image with {have} channels cannot feed a model of {channels} input channels; "
                    f"set data.channels to {have} or convert the images")


class MatchChannels(v2.Transform):
    """:func:`match_channels` as a pipeline step (images only)."""

    _transformed_types = (tv_tensors.Image,)

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def transform(self, inpt, params: dict):
        return tv_tensors.wrap(match_channels(inpt.as_subclass(torch.Tensor), self.channels), like=inpt)


class ScaleJitterCrop(v2.Transform):
    """Scale jitter and a padded random crop in one step, resizing only the pixels that are kept.

    The same distribution as ``ScaleJitter(target_size=(size, size), scale_range)`` followed by
    ``RandomCrop(size, pad_if_needed=True)``: the image is scaled by ``min(size / H, size / W) * u``,
    ``u`` uniform in ``scale_range`` (by ``u`` alone with ``fit=False``: jitter around the image's own
    resolution, the one whole-image evaluation sees), and a ``size`` x ``size`` window is taken (padded with
    ``fill`` where the scaled image is smaller: ``{tv_tensors.Image: 0, tv_tensors.Mask: ignore_index}``, say).
    Only the source region of that window is resized, which costs a fraction of resizing the whole image
    first. Masks are resized nearest-neighbour.
    """

    def __init__(self, size: int, scale_range: tuple[float, float], *, fill: dict, fit: bool = True) -> None:
        super().__init__()
        self.size, self.scale_range, self.fill, self.fit = size, tuple(scale_range), fill, fit
        self.generator: torch.Generator | None = None  # None: torch's global random state

    def make_params(self, flat_inputs: list) -> dict:
        height, width = v2.query_size(flat_inputs)
        low, high = self.scale_range
        g = self.generator
        scale = (min(self.size / height, self.size / width) if self.fit else 1.0) * (low + float(torch.rand((), generator=g)) * (high - low))
        scaled_h, scaled_w = max(1, round(height * scale)), max(1, round(width * scale))
        crop_h, crop_w = min(self.size, scaled_h), min(self.size, scaled_w)
        top, left = int(torch.randint(scaled_h - crop_h + 1, (), generator=g)), int(torch.randint(scaled_w - crop_w + 1, (), generator=g))
        y0, x0 = int(top / scale), int(left / scale)
        y1, x1 = min(height, max(y0 + 1, round((top + crop_h) / scale))), min(width, max(x0 + 1, round((left + crop_w) / scale)))
        pad_top = int(torch.randint(self.size - crop_h + 1, (), generator=g))
        pad_left = int(torch.randint(self.size - crop_w + 1, (), generator=g))
        return {"window": (y0, x0, y1 - y0, x1 - x0), "out": (crop_h, crop_w),
                "padding": [pad_left, pad_top, self.size - crop_w - pad_left, self.size - crop_h - pad_top]}

    def transform(self, inpt, params: dict):
        # masks: pixel-centre-aligned nearest, so labels stay on the pixels that the bilinear image shows
        mode = v2.InterpolationMode.NEAREST_EXACT if isinstance(inpt, tv_tensors.Mask) else v2.InterpolationMode.BILINEAR
        out = v2.functional.resize(v2.functional.crop(inpt, *params["window"]), list(params["out"]), interpolation=mode, antialias=True)
        if any(params["padding"]):
            fill = next((v for k, v in self.fill.items() if isinstance(inpt, k)), 0)
            out = v2.functional.pad(out, params["padding"], fill=fill)
        return out


class RandomFlipRotate(v2.Transform):
    """Random horizontal and vertical flips and quarter turns of the image and its masks, in one step: with
    all three, every symmetry of the square, for data without an up (shapes, cells, aerial and microscopy
    images). Boxes are not turned: recompute them from the masks afterwards."""

    _transformed_types = (tv_tensors.Image, tv_tensors.Mask, tv_tensors.BoundingBoxes)

    def __init__(self, *, hflip: bool = True, vflip: bool = False, rot90: bool = False) -> None:
        super().__init__()
        self.hflip, self.vflip, self.rot90 = hflip, vflip, rot90
        self.generator: torch.Generator | None = None  # None: torch's global random state

    def make_params(self, flat_inputs: list) -> dict:
        draws = torch.rand(2, generator=self.generator).tolist()
        return {"hflip": self.hflip and draws[0] < 0.5, "vflip": self.vflip and draws[1] < 0.5,
                "turns": int(torch.randint(4, (), generator=self.generator)) if self.rot90 else 0}

    def transform(self, inpt, params: dict):
        if isinstance(inpt, tv_tensors.BoundingBoxes):
            if params["turns"]:
                raise ValueError("quarter turns move images and masks only; recompute boxes from the masks")
            if params["hflip"]:
                inpt = v2.functional.horizontal_flip(inpt)
            return v2.functional.vertical_flip(inpt) if params["vflip"] else inpt
        dims = [d for d, flip in ((-1, params["hflip"]), (-2, params["vflip"])) if flip]
        out = inpt.as_subclass(torch.Tensor)
        out = out.flip(dims) if dims else out
        out = torch.rot90(out, params["turns"], dims=(-2, -1)) if params["turns"] else out
        return tv_tensors.wrap(out, like=inpt)


class ColourJitterNormalize(v2.Transform):
    """Random brightness, contrast, saturation and hue, then float conversion and normalisation, as one
    affine colour map per image: ``clamp(M x + t, 0, 1)`` normalised by ``mean``/``std``.

    Brightness ``b`` and contrast ``c`` and saturation ``s`` are drawn from ``[1 - j, 1 + j]`` and hue
    from ``[-hue, hue]`` (of a full turn), applied in that order: ``x * b``, blend with the mean grey
    level by ``c``, blend with the pixel's grey level by ``s``, and a rotation of the chroma plane of
    YIQ by the hue angle. Each step is linear, so the composite is one 3x3 matrix and an offset, with
    one clamp at the end (torchvision's ColorJitter clamps after every step and shifts hue in HSV;
    this is the same augmentation family at a fraction of the cost).
    """

    _transformed_types = (tv_tensors.Image,)
    GREY = torch.tensor([0.299, 0.587, 0.114])
    RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    YIQ_TO_RGB = torch.linalg.inv(RGB_TO_YIQ)

    def __init__(self, jitter: float, hue: float, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.jitter, self.hue = float(jitter), float(hue)
        self.mean, self.std = torch.tensor(mean).view(-1, 1), torch.tensor(std).view(-1, 1)
        self.generator: torch.Generator | None = None  # None: torch's global random state

    def make_params(self, flat_inputs: list) -> dict:
        draw = lambda span: float(torch.empty(()).uniform_(-span, span, generator=self.generator))  # noqa: E731
        return {"brightness": 1 + draw(self.jitter), "contrast": 1 + draw(self.jitter),
                "saturation": 1 + draw(self.jitter), "hue": draw(self.hue)}

    @classmethod
    def colour_maps(cls, brightness: torch.Tensor, contrast: torch.Tensor, saturation: torch.Tensor, hue: torch.Tensor,
                    mean_grey: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``[N, 3, 3]`` matrices and ``[N, 3, 1]`` offsets of ``N`` images' draws (each argument ``[N]``, float32)."""
        angle = -2 * torch.pi * hue  # this sign turns hues the way an HSV hue shift does
        cos, sin, one, zero = angle.cos(), angle.sin(), torch.ones_like(angle), torch.zeros_like(angle)
        rotation = torch.stack([one, zero, zero, zero, cos, -sin, zero, sin, cos], 1).view(-1, 3, 3)
        to_yiq, to_rgb, grey = (t.to(angle.device) for t in (cls.RGB_TO_YIQ, cls.YIQ_TO_RGB, cls.GREY))
        hue_map = to_rgb @ rotation @ to_yiq
        s = saturation.view(-1, 1, 1)
        saturation_map = s * torch.eye(3, device=angle.device) + (1 - s) * grey.expand(3, 3)
        matrix = hue_map @ saturation_map * (contrast * brightness).view(-1, 1, 1)
        offset = ((1 - contrast) * brightness * mean_grey).view(-1, 1, 1).expand(-1, 3, 1)  # grey stays grey under saturation and hue
        return matrix, offset

    def colour_map(self, params: dict, mean_grey: float) -> tuple[torch.Tensor, torch.Tensor]:
        values = [torch.tensor([float(v)]) for v in (params["brightness"], params["contrast"], params["saturation"],
                                                     params["hue"], mean_grey)]
        matrix, offset = self.colour_maps(*values)
        return matrix[0], offset[0]

    def transform(self, inpt, params: dict):
        pixels = inpt.as_subclass(torch.Tensor).reshape(inpt.shape[0], -1).to(torch.float32, copy=True)  # never the input
        pixels = pixels.div_(255) if inpt.dtype == torch.uint8 else pixels
        if inpt.shape[0] != 3 or self.jitter == self.hue == 0:  # jitter is for RGB; other images are only normalised
            return tv_tensors.Image(pixels.sub_(self.mean).div_(self.std).reshape(inpt.shape))
        matrix, offset = self.colour_map(params, float(self.GREY @ pixels.mean(dim=1)))
        out = torch.addmm(offset, matrix, pixels).clamp_(0, 1).sub_(self.mean).div_(self.std)
        return tv_tensors.Image(out.reshape(inpt.shape))


def train_transforms(
    *,
    img_size: int,
    scale_range: tuple[float, float] = (0.5, 2.0),
    fit: bool = True,
    hflip: bool = True,
    vflip: bool = False,
    rot90: bool = False,
    color_jitter: float = 0.3,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    channels: int | None = None,
    ignore_index: int,
) -> v2.Compose:
    """Random rescale (relative to ``img_size`` with ``fit``, else to the image's own size) with a padded
    ``img_size`` crop, flips, quarter turns, colour jitter, then float conversion and normalisation. Padding is
    0 in the image and ``ignore_index`` in the mask. ``channels`` (1 or 3) converts the images first.

    Example:
        >>> t = train_transforms(img_size=64, ignore_index=255)
        >>> out = t({"image": tv_tensors.Image(torch.zeros(3, 50, 70, dtype=torch.uint8)),
        ...          "mask": tv_tensors.Mask(torch.zeros(50, 70, dtype=torch.int64))})
        >>> tuple(out["image"].shape), tuple(out["mask"].shape)
        ((3, 64, 64), (64, 64))
    """
    steps: list[v2.Transform] = [MatchChannels(channels)] if channels else []
    steps.append(ScaleJitterCrop(img_size, scale_range, fill={tv_tensors.Image: 0, tv_tensors.Mask: ignore_index}, fit=fit))
    if hflip or vflip or rot90:
        steps.append(RandomFlipRotate(hflip=hflip, vflip=vflip, rot90=rot90))
    # one step converts, jitters (when asked) and normalises: each v2 step costs its own dispatch per sample
    steps.append(ColourJitterNormalize(color_jitter, min(color_jitter / 4, 0.5), mean, std))
    return v2.Compose(steps)


def train_transforms_of(data, *, ignore_index: int) -> v2.Compose:
    """:func:`train_transforms` as a data config says (any object with the fields of ``omniseg.config.DataConfig``)."""
    return train_transforms(img_size=data.img_size, scale_range=data.scale_range, fit=data.fit_to_crop, hflip=data.hflip,
                            vflip=data.vflip, rot90=data.rot90, color_jitter=data.color_jitter, mean=data.mean, std=data.std,
                            channels=data.channels, ignore_index=ignore_index)


def eval_transforms(*, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                    channels: int | None = None) -> v2.Compose:
    """Channel conversion (``channels``), float conversion and normalisation only (the training pipeline's
    first and last steps, without jitter): models take any size, so eval keeps the full image."""
    return v2.Compose([*([MatchChannels(channels)] if channels else []), ColourJitterNormalize(0.0, 0.0, mean, std)])


def eval_transforms_for(volumetric: bool, *, mean: Sequence[float] = IMAGENET_MEAN,
                        std: Sequence[float] = IMAGENET_STD, channels: int | None = None):
    """The evaluation pipeline of 2D images (``channels``, ``mean``/``std``) or of volumes (per-volume z-score)."""
    return VolumeTransform() if volumetric else eval_transforms(mean=mean, std=std, channels=channels)


def semantic_only(sample: Sample) -> Sample:
    """The Sample without instance annotations (cheaper to transform for semantic training)."""
    return {k: v for k, v in sample.items() if k != "instances"}


def seedable_steps(transform) -> list | None:
    """The random steps of ``transform`` (a callable, a ``Compose`` of them, or an object whose ``transform`` is one)
    that draw from a ``generator`` attribute; None when a step might draw from torch's global state instead."""
    if isinstance(transform, v2.Compose):
        parts = [seedable_steps(step) for step in transform.transforms]
        return None if any(part is None for part in parts) else [step for part in parts for step in part]
    if hasattr(transform, "generator"):
        return [transform]
    if isinstance(transform, MatchChannels):
        return []
    inner = getattr(transform, "transform", None)
    return seedable_steps(inner) if isinstance(inner, v2.Compose) else None


class TransformedDataset(torch.utils.data.Dataset):
    """``dataset`` with ``transform`` applied to each Sample; instance annotations are dropped first
    unless ``instances`` is set (cheaper for semantic training). A key ``(index, seed)`` draws the transform's
    randomness from ``seed`` (torch's random state outside is left as it was), so a draw is augmented the same
    in any process, in any thread and after a resume: omniseg's steps draw from a generator seeded with it, other
    transforms from torch's global state, seeded and restored around the call (one thread at a time)."""

    def __init__(self, dataset: torch.utils.data.Dataset, transform, *, instances: bool = False) -> None:
        self.dataset, self.transform, self.instances = dataset, transform, instances
        self.random_steps = seedable_steps(transform)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int | tuple[int, int]):
        index, seed = key if isinstance(key, tuple) else (key, None)
        sample = self.dataset[index]
        sample = sample if self.instances else semantic_only(sample)
        if seed is None:
            return self.transform(sample)
        if self.random_steps is not None:
            generator = torch.Generator().manual_seed(seed % 2**63)
            for step in self.random_steps:
                step.generator = generator
            return self.transform(sample)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed % 2**63)
            return self.transform(sample)


class PadCollate:
    """Batch Samples of different sizes by padding to the largest: image with 0, mask with ``ignore_index``.

    Returns ``{"image": Tensor[N, C, H, W], "mask": Tensor[N, H, W] (if present), "meta": list[dict],
    "size": Tensor[N, 2]}`` where ``size`` holds each sample's unpadded (H, W); volumes the same with
    a depth axis (``size`` then holds (D, H, W)).
    """

    def __init__(self, *, ignore_index: int) -> None:
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
        if all("augment" in s for s in samples):  # draws of the batch half of augmentation (omniseg.data.batch_augment)
            batch["augment"] = torch.stack([s["augment"] for s in samples])
        return batch


class VolumeTransform:
    """Volumes ``[C, D, H, W]``: per-channel z-score normalisation (nnU-Net's default for MR), and for
    training a random ``patch_size`` crop (padded with 0 / ``ignore_index`` where the volume is smaller)
    and random flips along each axis. The mask moves with the image."""

    def __init__(self, patch_size: Sequence[int] | None = None, *, flip: bool = False, ignore_index: int | None = None,
                 seed: int | None = None) -> None:
        self.patch_size = tuple(patch_size) if patch_size is not None else None
        if self.patch_size is not None and (len(self.patch_size) != 3 or min(self.patch_size) < 1):
            raise ValueError(f"patch_size must be three positive sides (D, H, W), got {patch_size}")
        if self.patch_size is not None and ignore_index is None:
            raise ValueError("a training crop pads the mask: pass the dataset's ignore_index")
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


class InstanceTransform:
    """A Sample with instances -> ``(image float [3, H, W] in 0..1, target)`` for torchvision's detectors,
    ``target = {"boxes" [N, 4] XYXY, "labels" [N], "masks" [N, H, W] uint8}``.

    Training (``img_size`` given) applies the semantic pipeline's geometry and colour steps (``fit``: the scale
    jitter is relative to the image fitted to the crop, else to its own size) to the image
    and every instance mask together; instances cropped away are dropped, and boxes are recomputed from
    the masks (pixel-exact, never degenerate). Normalisation is left to the detector. With ``semantic``
    the target also holds the sample's class map as ``semantic`` [H, W] (int64; padding is ``ignore_index``),
    for panoptic models.
    """

    def __init__(self, img_size: int | None = None, *, scale_range: tuple[float, float] = (0.5, 2.0), hflip: bool = True,
                 vflip: bool = False, rot90: bool = False, color_jitter: float = 0.3, semantic: bool = False,
                 ignore_index: int | None = None, fit: bool = True) -> None:
        if semantic and ignore_index is None:
            raise ValueError("the class map of panoptic targets needs the dataset's ignore_index")
        self.semantic, self.ignore_index = semantic, ignore_index
        steps: list[v2.Transform] = []
        if img_size is not None:
            steps.append(ScaleJitterCrop(img_size, scale_range, fill={tv_tensors.Image: 0, tv_tensors.Mask: 0}, fit=fit))
            if hflip or vflip or rot90:
                steps.append(RandomFlipRotate(hflip=hflip, vflip=vflip, rot90=rot90))
        jitter = color_jitter if img_size is not None else 0.0
        steps.append(ColourJitterNormalize(jitter, min(jitter / 4, 0.5), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)))
        self.transform = v2.Compose(steps)

    def __call__(self, sample: Sample) -> tuple[torch.Tensor, dict]:
        instances = sample.get("instances")
        height, width = sample["image"].shape[-2:]
        masks = instances["masks"] if instances is not None else tv_tensors.Mask(torch.zeros(0, height, width, dtype=torch.bool))
        labels = instances["labels"] if instances is not None else torch.zeros(0, dtype=torch.int64)
        inputs = {"image": sample["image"], "masks": tv_tensors.Mask(masks.to(torch.uint8))}
        if self.semantic:
            if "mask" not in sample:
                raise DataError(f"sample {sample['meta'].get('id')!r} has no class mask; panoptic training needs one per image")
            inputs["semantic"] = tv_tensors.Mask(sample["mask"] + 1)  # shifted so that the padding (0) becomes ignore_index
        out = self.transform(inputs)
        masks = out["masks"].as_subclass(torch.Tensor).bool()
        keep = masks.flatten(1).any(1)
        masks, labels = masks[keep], labels[keep]
        boxes = masks_to_boxes(masks) + torch.tensor([0.0, 0.0, 1.0, 1.0]) if len(masks) else torch.zeros(0, 4)
        target = {"boxes": boxes, "labels": labels, "masks": masks.to(torch.uint8)}
        if self.semantic:
            shifted = out["semantic"].as_subclass(torch.Tensor).long()
            target["semantic"] = torch.where(shifted == 0, self.ignore_index, shifted - 1)
        return out["image"].as_subclass(torch.Tensor), target


def collate_instances(batch: list[tuple[torch.Tensor, dict]]) -> tuple[list[torch.Tensor], list[dict]]:
    """Images and targets as lists (detectors take images of different sizes)."""
    return [image for image, _ in batch], [target for _, target in batch]
