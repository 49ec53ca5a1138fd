"""The common core of formats that pair one image file with one label PNG (CamVid, Pascal VOC, ...).

A reader lists ``PairedItem``s per split and says how to decode a label PNG into class ids; this
base gives the DataSource protocol: lazy Samples (files are read on access), per-read checks that name
the file (size mismatch, labels outside the classes), and class pixel statistics read one mask at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from omniseg.data.imageio import pack_rgb, read_image, read_label_png
from omniseg.data.sample import DatasetInfo, Sample, make_sample
from omniseg.errors import DataError


@dataclass
class PairedItem:
    image: Path
    mask: Path | None
    instances: Path | None = None  # optional PNG of instance ids (0 = none)


def instances_from_ids(layers: np.ndarray | list[np.ndarray], semantic: np.ndarray, ignore_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Instance masks ``[N, H, W]`` and labels ``[N]`` from id maps (one, or several layers when
    instances overlap): one instance per non-zero id, in id order. Its class is the most common semantic
    class over its visible pixels (those no higher id covers), as the mask was painted in id order."""
    layers = [layers] if isinstance(layers, np.ndarray) else layers
    found = sorted({v for layer in layers for v in np.unique(layer).tolist()} - {0})
    masks = [np.logical_or.reduce([layer == value for layer in layers]) for value in found]
    kept, labels = [], []
    covered = np.zeros(semantic.shape, bool)
    for mask in reversed(masks):  # the last painted is fully visible
        for pixels in (mask & ~covered, mask):
            classes = semantic[pixels]
            classes = classes[(classes != ignore_index) & (classes >= 0)]
            if len(classes):
                kept.append(mask)
                labels.append(int(np.bincount(classes).argmax()))
                break
        covered |= mask
    stacked = np.stack(kept[::-1]) if kept else np.zeros((0, *semantic.shape), bool)
    return stacked, np.asarray(labels[::-1], np.int64)


def read_instance_pngs(path: Path, semantic: np.ndarray, ignore_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Instances from the id PNG ``path`` and its overlap layers ``<stem>.1.png``, ``<stem>.2.png``, ...;
    8-bit PNGs keep 255 for void (VOC's SegmentationObject)."""
    layers, layer = [], path
    while layer.is_file():
        raw, mode, _ = read_label_png(layer)
        if mode == "RGB" or raw.shape != semantic.shape:
            raise DataError(f"instance PNG {layer} must be a one-channel id image of the mask's size {semantic.shape}")
        ids = raw.astype(np.int64)
        if mode in ("P", "L"):
            ids[ids == 255] = 0
        layers.append(ids)
        layer = path.with_name(f"{path.stem}.{len(layers)}.png")
    return instances_from_ids(layers, semantic, ignore_index)


UNSPLIT = "all"  # the one split of data that has none, read with val_fraction 0 (conversion keeps it so)


def seeded_split(items: list, val_fraction: float, seed: int) -> dict[str, list]:
    """``{"train": [...], "val": [...]}`` with ``val_fraction`` of ``items`` (at least one) held out;
    ``val_fraction`` 0 keeps them together as ``{"all": [...]}``."""
    if val_fraction == 0:
        return {UNSPLIT: list(items)}
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"data.val_fraction must be between 0 and 1, got {val_fraction}")
    order = np.random.default_rng(seed).permutation(len(items))
    held = set(order[: max(1, round(len(items) * val_fraction)) if len(items) > 1 else 0].tolist())
    return {"train": [x for i, x in enumerate(items) if i not in held], "val": [x for i, x in enumerate(items) if i in held]}


def class_pixel_totals(masks: Iterable[np.ndarray], num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(pixels of class c, pixels of the masks that contain c)`` over ``masks``, read one at a time."""
    pixels, image_pixels = np.zeros(num_classes, np.int64), np.zeros(num_classes, np.int64)
    for mask in masks:
        counts = np.bincount(mask[(mask >= 0) & (mask < num_classes)].reshape(-1), minlength=num_classes)
        pixels += counts
        image_pixels[counts > 0] += mask.size
    return pixels, image_pixels


def colours_to_ids(rgb: np.ndarray, lookup: dict[int, int]) -> tuple[np.ndarray | None, tuple[int, int, int] | None]:
    """Class ids ``[H, W]`` of a colour-coded mask through ``lookup`` (packed colour -> id), or
    ``(None, colour)`` with the first colour ``lookup`` lacks."""
    colours, inverse = np.unique(pack_rgb(rgb), return_inverse=True)
    ids = np.array([lookup.get(int(c), -1) for c in colours], dtype=np.int64)
    if (ids < 0).any():
        unknown = int(colours[ids < 0][0])
        return None, (unknown >> 16, (unknown >> 8) & 255, unknown & 255)
    return ids[inverse].reshape(rgb.shape[:2]), None


class PairedSource:
    """Base of image + label-PNG formats. Subclasses set ``root``, ``info``, ``description`` and
    ``items`` (split -> list of PairedItem), and may override :meth:`decode_mask`."""

    root: Path
    info: DatasetInfo
    description: str
    items: dict[str, list[PairedItem]]
    volumetric = False

    def splits(self) -> list[str]:
        return [s for s, items in self.items.items() if items]

    def dataset(self, split: str) -> PairedDataset:
        if not self.items.get(split):
            raise DataError(f"{self.root} has no images in split {split!r}; splits found: {', '.join(self.splits()) or 'none'}")
        return PairedDataset(self, self.items[split])

    def decode_mask(self, raw: np.ndarray, mode: str, path: Path) -> np.ndarray:
        """Class ids ``[H, W]`` (int64) from a label PNG's content; by default its index values."""
        if mode == "RGB":
            raise DataError(f"mask {path} is an RGB image; this format expects class-index or palette PNGs")
        return raw.astype(np.int64)

    def read_mask(self, path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
        raw, mode, _ = read_label_png(path)
        mask = self.decode_mask(raw, mode, path)
        if size is not None and mask.shape != tuple(size):
            raise DataError(f"mask {path} is {mask.shape[1]}x{mask.shape[0]} but its image is {size[1]}x{size[0]}; "
                            "masks must have the size of their image")
        num_classes, ignore = self.info.num_classes, self.info.ignore_index
        bad = (mask < 0) | ((mask >= num_classes) & (mask != ignore))
        if bad.any():
            raise DataError(f"mask {path} holds label {int(mask[bad][0])} outside the classes 0..{num_classes - 1} "
                            f"(ignore = {ignore}); fix the mask or the class list")
        return mask

    def read_instances(self, item: PairedItem, semantic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return read_instance_pngs(item.instances, semantic, self.info.ignore_index)

    def labelled(self, split: str) -> bool:
        return all(item.mask is not None for item in self.items.get(split, []))

    def image_size(self, item: PairedItem) -> tuple[int, int] | None:
        """The (H, W) a mask must have; None where the mask's own size is the truth (label PNGs)."""
        return None

    def class_pixel_stats(self, split: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Pixels per class and pixels of the images containing each class, reading one mask at a time."""
        if not self.labelled(split):
            return None
        masks = (self.read_mask(item.mask, self.image_size(item)) for item in self.items.get(split, []))
        return class_pixel_totals(masks, self.info.num_classes)


class ItemDataset(torch.utils.data.Dataset):
    """The Samples of one split: ``items`` (each with an ``image`` path) of ``source``, read on access."""

    def __init__(self, source, items: list) -> None:
        self.source, self.items, self.info = source, items, source.info

    def __len__(self) -> int:
        return len(self.items)

    def path(self, index: int) -> Path:
        """The image file of Sample ``index`` (named in reports without reading it)."""
        return self.items[index].image


class PairedDataset(ItemDataset):
    """The Samples of one split of a :class:`PairedSource`, read on access."""

    def __getitem__(self, index: int) -> Sample:
        item = self.items[index]
        image = read_image(item.image)
        mask = self.source.read_mask(item.mask, tuple(image.shape[-2:])) if item.mask is not None else None
        instance_masks = instance_labels = None
        if mask is not None and item.instances is not None:
            instance_masks, instance_labels = self.source.read_instances(item, mask)
        return make_sample(image, mask=mask, instance_masks=instance_masks, instance_labels=instance_labels,
                           sample_id=item.image.stem, path=str(item.image))
