"""The common core of formats that describe objects (COCO, LabelMe, VIA, CVAT, YOLO, DSB, ADE20K, ...).

A reader lists ``ObjectItem``s per split and says how to load an image's objects; each object carries
its geometry in COCO's own terms: polygons (a list of flat ``[x1, y1, x2, y2, ...]`` lists), an RLE dict,
or a boolean bitmap. Rasterisation goes through pycocotools, so a polygon becomes exactly the mask COCO's
``annToMask`` gives. A Sample gets both truths:

- ``instances``: one mask per object that is not a crowd region;
- ``mask``: semantic class ids, objects painted in order (a later object covers an earlier one), crowd
  regions included; pixels no object covers are ``unlabelled`` (0, the background, unless the format
  has no background class, e.g. COCO panoptic, where they are ``ignore_index``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pycocotools import mask as mask_utils

from omniseg.data.formats.base import reading
from omniseg.data.formats.paired import ItemDataset, class_pixel_totals
from omniseg.data.imageio import check_image_size, read_image, verify_image
from omniseg.data.sample import DatasetInfo, Sample, make_sample
from omniseg.errors import DataError

Segmentation = list | dict | np.ndarray

BACKGROUND_NAMES = {"background", "_background_", "__background__", "bg"}


@dataclass
class AnnotatedObject:
    """One object: its class id (in DatasetInfo), its geometry and whether it is a crowd region."""

    label: int
    segmentation: Segmentation
    iscrowd: bool = False


@dataclass
class ObjectItem:
    """One image of an object-annotated dataset; ``objects`` is None until loaded (lazy formats)."""

    image: Path
    annotation: Path | None = None  # the file that describes it (named in errors)
    size: tuple[int, int] | None = None  # (H, W) as the annotation states it
    objects: list[AnnotatedObject] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.size is not None:  # refuse an absurd declared size before anything is allocated for it
            check_image_size(*self.size, self.annotation or self.image, f"image {self.image.name}")


def peek_text(path: Path, size: int = 4096) -> str:
    """The first ``size`` characters of a text file ("" if unreadable): enough to tell formats apart."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read(size)
    except OSError:
        return ""


def rectangle_polygon(x1: float, y1: float, x2: float, y2: float) -> list[float]:
    """A box as a 4-vertex flat polygon."""
    x1, x2 = sorted((float(x1), float(x2)))
    y1, y2 = sorted((float(y1), float(y2)))
    return [x1, y1, x2, y1, x2, y2, x1, y2]


def ellipse_polygon(cx: float, cy: float, rx: float, ry: float, theta: float = 0.0, vertices: int = 64) -> list[float]:
    """An ellipse (rotated by ``theta`` radians) as a flat polygon of ``vertices`` points."""
    angles = np.linspace(0.0, 2.0 * math.pi, vertices, endpoint=False)
    x, y = rx * np.cos(angles), ry * np.sin(angles)
    c, s = math.cos(theta), math.sin(theta)
    points = np.stack([cx + c * x - s * y, cy + s * x + c * y], axis=1)
    return points.reshape(-1).tolist()


def clip_polygon(flat: list[float], height: int, width: int) -> list[float]:
    """A flat polygon with vertices far outside the image (more than the image's size beyond it) cut to that
    window (Sutherland-Hodgman, exact for a box). pycocotools walks every pixel step of every edge, so a vertex
    at 1e12 would otherwise allocate without bound; polygons within the window are left exactly as they are,
    and beyond it only pixels along a cut edge can move (by pycocotools' rounding of the new vertices)."""
    points = np.asarray(flat, np.float64).reshape(-1, 2)
    if not np.isfinite(points).all():
        raise ValueError("a polygon has a coordinate that is not a finite number")
    margin = float(height + width + 64)
    low, high = np.array([-margin, -margin]), np.array([width + margin, height + margin])
    if ((points >= low) & (points <= high)).all():
        return flat
    for axis, bound, keep_above in ((0, low[0], True), (0, high[0], False), (1, low[1], True), (1, high[1], False)):
        if not len(points):
            break
        inside = points[:, axis] >= bound if keep_above else points[:, axis] <= bound
        kept = []
        for k in range(len(points)):
            current, previous = points[k], points[k - 1]
            if inside[k] != inside[k - 1]:  # the edge crosses the bound: keep the crossing
                t = (bound - previous[axis]) / (current[axis] - previous[axis])
                kept.append(previous + t * (current - previous))
            if inside[k]:
                kept.append(current)
        points = np.asarray(kept, np.float64).reshape(-1, 2)
    return points.reshape(-1).tolist()


def object_mask(segmentation: Segmentation, height: int, width: int) -> np.ndarray:
    """The boolean ``[H, W]`` mask of one object, as pycocotools' ``annToMask`` gives it.

    Example:
        >>> object_mask([[0, 0, 4, 0, 4, 2, 0, 2]], 4, 6).sum()
        np.int64(8)
    """
    if isinstance(segmentation, np.ndarray):
        if segmentation.shape != (height, width):
            raise ValueError(f"bitmap is {segmentation.shape[1]}x{segmentation.shape[0]}, image {width}x{height}")
        return segmentation.astype(bool)
    if isinstance(segmentation, dict):
        rle = segmentation
        if [int(v) for v in rle.get("size", [])] != [height, width]:
            raise ValueError(f"its RLE has size {rle.get('size')}, the image is {height}x{width} (height, width)")
        if isinstance(rle.get("counts"), list):
            rle = mask_utils.frPyObjects(rle, height, width)
        elif isinstance(rle.get("counts"), str):
            rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
        try:
            return mask_utils.decode(rle).astype(bool)
        except Exception as exc:  # pycocotools raises bare Exceptions and TypeErrors for bad counts
            raise ValueError(f"its RLE counts cannot be decoded ({exc})") from None
    polygons = [clip_polygon([float(v) for v in p], height, width) for p in segmentation if len(p) >= 6]
    polygons = [p for p in polygons if len(p) >= 6]
    if not polygons:  # zero-area or empty polygons cover nothing
        return np.zeros((height, width), bool)
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))).astype(bool)


def split_by_group(shapes: list[tuple[int, Any, Segmentation]]) -> list[AnnotatedObject]:
    """Objects from ``(label, group, segmentation)`` shapes in file order: polygon shapes that share
    ``(label, group)`` become one object (LabelMe group ids, CVAT groups); ``group`` None stays alone."""
    objects, grouped = [], {}
    for label, group, segmentation in shapes:
        key = (label, group)
        if group is not None and key in grouped and isinstance(segmentation, list):
            grouped[key].segmentation.extend(segmentation)
            continue
        obj = AnnotatedObject(label, list(segmentation) if isinstance(segmentation, list) else segmentation)
        if group is not None and isinstance(segmentation, list):
            grouped[key] = obj
        objects.append(obj)
    return objects


class ObjectSource:
    """Base of object-annotated formats. Subclasses set ``root``, ``info``, ``description`` and
    ``items`` (split -> list of ObjectItem), and implement :meth:`load_objects` when items are lazy."""

    root: Path
    info: DatasetInfo
    description: str
    items: dict[str, list[ObjectItem]]
    volumetric = False
    unlabelled = 0  # semantic value of pixels no object covers

    def splits(self) -> list[str]:
        return [s for s, items in self.items.items() if items]

    def dataset(self, split: str) -> ObjectDataset:
        if not self.items.get(split):
            raise DataError(f"{self.root} has no images in split {split!r}; splits found: {', '.join(self.splits()) or 'none'}")
        return ObjectDataset(self, self.items[split])

    def labelled(self, split: str) -> bool:
        return bool(self.items.get(split))

    def load_objects(self, item: ObjectItem, size: tuple[int, int]) -> list[AnnotatedObject]:
        """The objects of ``item`` in an image of ``size`` (H, W); by default those listed at open."""
        return item.objects or []

    def load_image(self, item: ObjectItem) -> torch.Tensor:
        self.check_listed_image(item)
        return read_image(item.image)

    def image_size(self, item: ObjectItem) -> tuple[int, int]:
        self.check_listed_image(item)
        return tuple(item.size) if item.size else verify_image(item.image)

    @staticmethod
    def check_listed_image(item: ObjectItem) -> None:
        """Name the annotation file when the image it lists is missing: the name there is what to check."""
        if item.annotation is not None and not item.image.is_file():
            raise DataError(f"image {item.image}, listed in {item.annotation}, does not exist; check the name there and the image folder")

    def objects_of(self, item: ObjectItem, size: tuple[int, int]) -> list[AnnotatedObject]:
        """The objects of ``item``, checked against the image's size and the class list."""
        if item.size is not None and tuple(item.size) != tuple(size):
            raise DataError(f"{item.annotation or item.image} says image {item.image.name} is {item.size[1]}x{item.size[0]} "
                            f"but the file is {size[1]}x{size[0]}; fix the annotation's width/height or the image")
        objects = self.load_objects(item, size)
        for obj in objects:
            if not 0 <= obj.label < self.info.num_classes and obj.label != self.info.ignore_index:
                raise DataError(f"{item.annotation or item.image}: class id {obj.label} is outside 0..{self.info.num_classes - 1}")
        return objects

    def rasterise(self, objects: list[AnnotatedObject], size: tuple[int, int], where: Path | str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(semantic [H, W] int64, instance masks [N, H, W] bool, instance labels [N])``; ``where``
        (the annotation file) is named when an object's geometry is broken."""
        height, width = size
        semantic = np.full((height, width), self.unlabelled, np.int64)
        masks, labels = [], []
        things = set(self.info.things)
        for number, obj in enumerate(objects):
            try:
                mask = object_mask(obj.segmentation, height, width)
            except (ValueError, TypeError, OverflowError) as exc:
                raise DataError(f"{where}: object {number} ({self.info.class_names[obj.label] if obj.label < self.info.num_classes else obj.label}) "
                                f"cannot be drawn: {exc}") from None
            semantic[mask] = obj.label
            if not obj.iscrowd and obj.label != self.info.ignore_index and obj.label in things:
                masks.append(mask)
                labels.append(obj.label)
        stacked = np.stack(masks) if masks else np.zeros((0, height, width), bool)
        return semantic, stacked, np.asarray(labels, np.int64)

    def class_pixel_stats(self, split: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Pixels per class and pixels of the images containing each class, one image at a time."""
        def semantic_masks():
            for item in self.items.get(split, []):
                size = self.image_size(item)
                yield self.rasterise(self.objects_of(item, size), size, item.annotation or item.image)[0]

        return class_pixel_totals(semantic_masks(), self.info.num_classes)


class ObjectDataset(ItemDataset):
    """The Samples of one split of an :class:`ObjectSource`, read and rasterised on access."""

    def __getitem__(self, index: int) -> Sample:
        item = self.items[index]
        image = self.source.load_image(item)
        size = (int(image.shape[-2]), int(image.shape[-1]))
        with reading(item.annotation or item.image, f"the objects of {item.image.name}"):
            semantic, masks, labels = self.source.rasterise(self.source.objects_of(item, size), size, item.annotation or item.image)
        return make_sample(image, mask=semantic, instance_masks=masks, instance_labels=labels,
                           sample_id=item.extra.get("id", item.image.stem), path=str(item.image))
