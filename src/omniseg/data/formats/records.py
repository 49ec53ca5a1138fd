"""What the writers read: every image of a DataSource with its truth, as objects where the format had them.

A writer gets :class:`Record`s: the sample (image, semantic mask, instances) and its ``objects`` in the
source's own geometry where the source has it (COCO/LabelMe/YOLO polygons stay polygons), otherwise
bitmaps: one per instance, and one per stuff class region, so that nothing labelled is lost.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from rich.progress import Progress

from omniseg.data.formats.objects import BACKGROUND_NAMES, AnnotatedObject, ObjectSource, object_mask
from omniseg.data.sample import DatasetInfo, Sample
from omniseg.errors import DataError


@dataclass
class Record:
    split: str
    sample: Sample
    objects: list[AnnotatedObject]

    @property
    def stem(self) -> str:
        return self.sample["meta"]["id"]

    @property
    def size(self) -> tuple[int, int]:
        return tuple(int(v) for v in self.sample["image"].shape[-2:])

    def object_masks(self) -> list[np.ndarray]:
        return [object_mask(o.segmentation, *self.size) for o in self.objects]


def has_background(info: DatasetInfo) -> bool:
    """Whether class 0 is a background class (writers then leave it out of the category lists)."""
    return info.class_names[0].lower() in BACKGROUND_NAMES


def sample_objects(sample: Sample, info: DatasetInfo) -> list[AnnotatedObject]:
    """Bitmap objects of a Sample: each instance, then one region per class that no instance covers
    (a crowd region when the class is a thing of a sample with instances: labelled, but not one object)."""
    objects = []
    covered = np.zeros(tuple(sample["image"].shape[-2:]), bool)
    if "instances" in sample:
        for mask, label in zip(sample["instances"]["masks"].numpy(), sample["instances"]["labels"].tolist()):
            objects.append(AnnotatedObject(int(label), mask.astype(bool)))
            covered |= mask
    if "mask" in sample:
        semantic = sample["mask"].numpy()
        first = 1 if has_background(info) else 0
        for label in np.unique(semantic[~covered]).tolist():
            region = (semantic == label) & ~covered
            if first <= label < info.num_classes and region.any():
                objects.append(AnnotatedObject(int(label), region, iscrowd="instances" in sample and label in info.things))
    return objects


def records(source, description: str = "converting") -> Iterator[Record]:
    """Every labelled image of every split of ``source``, with a progress bar."""
    if getattr(source, "volumetric", False):
        raise DataError(f"{source.root} holds volumes; conversion writes 2D image formats only")
    splits = source.splits()
    if not splits:
        raise DataError(f"{source.root} has no images to convert")
    total = sum(len(source.dataset(s)) for s in splits)
    seen: dict[str, str] = {}
    with Progress(transient=True) as progress:
        task = progress.add_task(description, total=total)
        for split in splits:
            dataset = source.dataset(split)
            for index in range(len(dataset)):
                sample = dataset[index]
                stem = sample["meta"]["id"]
                if stem in seen:
                    raise DataError(f"two images are named {stem!r} ({seen[stem]} and {sample['meta']['path']}); "
                                    "written files are named by image, so rename one")
                seen[stem] = sample["meta"]["path"]
                if isinstance(source, ObjectSource):
                    item = dataset.items[index]
                    objects = source.objects_of(item, tuple(sample["image"].shape[-2:]))
                else:
                    objects = sample_objects(sample, source.info)
                progress.advance(task)
                yield Record(split, sample, objects)


def write_image(record: Record, folder: Path, suffixes: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")) -> Path:
    """Copy the record's image file into ``folder`` (bytes unchanged), or encode it as PNG when the
    source had no file of an accepted type (e.g. LabelMe's embedded imageData)."""
    folder.mkdir(parents=True, exist_ok=True)
    source = Path(record.sample["meta"]["path"])
    if source.is_file() and source.suffix.lower() in suffixes:
        target = folder / f"{record.stem}{source.suffix.lower()}"
        shutil.copyfile(source, target)
        return target
    target = folder / f"{record.stem}.png"
    Image.fromarray(record.sample["image"].permute(1, 2, 0).numpy()).save(target)
    return target
