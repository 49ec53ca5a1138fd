"""COCO: instances (polygons and RLE, crowd regions), stuff, and panoptic::

    DATA/annotations/instances_train2017.json   images, annotations (segmentation, iscrowd), categories
    DATA/annotations/stuff_train2017.json       optional: stuff classes as RLE, merged under the things
    DATA/train2017/*.jpg                         (or images/train2017, images/, or where file_name points)
    DATA/annotations/panoptic_val2017.json      panoptic: segments_info per image
    DATA/annotations/panoptic_val2017/*.png     segment id = R + 256 G + 256^2 B

A single JSON at the top (``annotations.json``, as labelme2coco writes) also works; the split is then
seeded. Category ids may be sparse (COCO's 1..90): classes are the categories in id order, after
class 0 = background (or the category named ``_background_``). Panoptic classes are the categories
themselves, and pixels of no segment are ignored (void).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from omniseg.core.rle import encode_rle
from omniseg.data.formats.base import read_json, reading
from omniseg.data.formats.objects import BACKGROUND_NAMES, AnnotatedObject, ObjectItem, ObjectSource, peek_text
from omniseg.data.formats.paired import UNSPLIT, seeded_split
from omniseg.data.formats.records import has_background, records, write_image
from omniseg.data.imageio import read_label_png
from omniseg.data.sample import DEFAULT_IGNORE_INDEX, DatasetInfo
from omniseg.errors import DataError

PEEK_CHARS = 1 << 20


def _json_candidates(root: Path) -> list[Path]:
    return sorted((root / "annotations").glob("*.json")) + sorted(root.glob("*.json")) if root.is_dir() else []


def coco_kind(path: Path) -> str | None:
    """'instances', 'panoptic' or None for a JSON file, judged from its name or its first megabyte."""
    stem = path.stem.lower()
    if stem.startswith(("instances_", "stuff_")):
        return "instances"
    text = peek_text(path, PEEK_CHARS)
    if '"segments_info"' in text or (stem.startswith("panoptic_") and '"segmentation"' not in text and '"annotations"' in text):
        return "panoptic"
    if '"images"' in text and not _ends_like_json(path) and '"shapes"' not in text and "_via_" not in text:
        return "instances"  # a COCO file cut short: read as COCO, whose reader names the broken file
    if '"images"' not in text or ('"annotations"' not in text and '"categories"' not in text):
        return None
    if '"shapes"' in text or "_via_" in text or stem.startswith(("captions", "person_keypoints", "image_info")):
        return None  # LabelMe, VIA and the COCO files without masks
    return "instances"


def _ends_like_json(path: Path) -> bool:
    """Whether the file's last non-blank character closes a JSON object or list (a truncated file does not)."""
    try:
        with open(path, "rb") as file:
            file.seek(max(0, path.stat().st_size - 64))
            tail = file.read().rstrip()
    except OSError:
        return True
    return tail.endswith((b"}", b"]"))


def split_name(path: Path) -> str:
    """``instances_train2017.json`` -> ``train``; a name without train/val/test -> ``all``."""
    stem = re.sub(r"^(instances|stuff|panoptic)_?", "", path.stem.lower())
    for split in ("train", "val", "test"):
        if split in stem:
            return split
    return "all"


def load_json(path: Path) -> dict:
    values = read_json(path)
    if not isinstance(values, dict):
        raise DataError(f"{path} must hold a JSON object with 'images' and 'annotations', got {type(values).__name__}")
    for key in ("images", "categories"):
        if not isinstance(values.get(key), list):
            raise DataError(f"{path} has no list {key!r}; is it a COCO annotation file?")
    return values


def find_image(root: Path, json_path: Path, file_name: str, split_dir_hint: str) -> Path:
    """Where an image named in a COCO file lives: next to the JSON, under the root, or in a split folder."""
    bases = [json_path.parent, root, root / split_dir_hint, root / "images" / split_dir_hint, root / "images",
             root / "input_images", json_path.parent.parent / split_dir_hint]
    for base in bases:
        if (base / file_name).is_file():
            return base / file_name
    return root / "images" / file_name  # reported as missing when read


def _categories(files: list[tuple[Path, dict]], panoptic: bool) -> tuple[DatasetInfo, dict[int, int]]:
    categories: dict[int, dict] = {}
    for path, values in files:
        for cat in values["categories"]:
            if not isinstance(cat, dict) or not isinstance(cat.get("id"), int) or not isinstance(cat.get("name"), str):
                raise DataError(f"{path}: a category lacks an integer 'id' or a text 'name': {str(cat)[:80]}")
            entry = dict(cat)
            entry.setdefault("isthing", 0 if path.stem.startswith("stuff") else 1)
            categories[cat["id"]] = entry
    ordered = [categories[k] for k in sorted(categories)]
    if panoptic:
        names, ids = [c["name"] for c in ordered], [int(c["id"]) for c in ordered]
        things = [i for i, c in enumerate(ordered) if c.get("isthing")]
        palette = [tuple(c["color"]) for c in ordered] if all("color" in c for c in ordered) else []
        with reading(files[0][0], "categories"):
            return DatasetInfo(names, palette=palette, things=things, ignore_index=DEFAULT_IGNORE_INDEX), {cid: i for i, cid in enumerate(ids)}
    background = [c for c in ordered if str(c["name"]).lower() in BACKGROUND_NAMES][:1]
    rest = [c for c in ordered if c not in background]
    names = [background[0]["name"] if background else "background"] + [c["name"] for c in rest]
    mapping = {int(c["id"]): i + 1 for i, c in enumerate(rest)}
    if background:
        mapping[int(background[0]["id"])] = 0
    things = [mapping[int(c["id"])] for c in rest if c.get("isthing", 1)]
    with reading(files[0][0], "categories"):
        return DatasetInfo(names, things=things, ignore_index=DEFAULT_IGNORE_INDEX), mapping


class _CocoBase(ObjectSource):
    kind = "instances"

    @classmethod
    def detect(cls, root: Path) -> bool:
        return any(coco_kind(p) == cls.kind for p in _json_candidates(root))

    def __init__(self, root: str | Path, *, val_fraction: float = 0.2, split_seed: int = 0) -> None:
        self.root = Path(root)
        paths = [p for p in _json_candidates(self.root) if coco_kind(p) == self.kind]
        if not paths:
            seen = [p.name for p in _json_candidates(self.root)]
            raise DataError(f"{self.root} has no COCO {self.kind} JSON (looked in {self.root}/annotations/ and {self.root}/"
                            + (f"; {', '.join(seen[:5])} {'is' if len(seen) == 1 else 'are'} not COCO {self.kind} files)" if seen else ")"))
        files = [(p, load_json(p)) for p in paths]
        self.info, self.category_to_class = _categories(files, self.kind == "panoptic")
        by_split: dict[str, list[ObjectItem]] = {}
        for split in dict.fromkeys(split_name(p) for p, _ in files):
            # stuff files first, so that things are painted over stuff
            group = sorted([f for f in files if split_name(f[0]) == split], key=lambda f: not f[0].stem.startswith("stuff"))
            with reading(", ".join(p.name for p, _ in group)):  # each file also checked (and named) on its own
                by_split[split] = self._items(group)
        if set(by_split) == {"all"}:
            by_split = seeded_split(by_split["all"], val_fraction, split_seed)
        self.items = by_split
        if not any(self.items.values()):
            raise DataError(f"{', '.join(str(p) for p in paths)} list no images")
        self.description = f"coco {self.kind} ({self.info.num_classes} classes, {len(self.info.things)} things)"

    def _annotation_object(self, path: Path, ann: dict) -> AnnotatedObject:
        if not isinstance(ann, dict) or "category_id" not in ann or "segmentation" not in ann:
            raise DataError(f"{path}: annotation {ann.get('id', '?') if isinstance(ann, dict) else ann!r} lacks 'category_id' or 'segmentation'")
        category = ann["category_id"]
        if not isinstance(category, int) or category not in self.category_to_class:
            raise DataError(f"{path}: annotation {ann.get('id')} has category_id {category}, which 'categories' does not list")
        segmentation = ann["segmentation"]
        if isinstance(segmentation, list):
            if not all(isinstance(p, list) and all(isinstance(v, (int, float)) for v in p) for p in segmentation):
                raise DataError(f"{path}: annotation {ann.get('id')} has a polygon that is not a list of numbers")
            for polygon in segmentation:  # never dropped in silence: a malformed polygon is named with its image
                if len(polygon) % 2 or len(polygon) < 6:
                    raise DataError(
                        f"{path}: annotation {ann.get('id')} (image_id {ann.get('image_id')}) has a polygon of {len(polygon)} "
                        f"numbers {str(polygon)[:60]}; a polygon is x, y pairs of at least 3 points: fix its coordinates "
                        "or remove the annotation")
        elif not (isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation):
            raise DataError(f"{path}: annotation {ann.get('id')}: 'segmentation' must be polygons or an RLE with counts and size")
        return AnnotatedObject(self.category_to_class[category], segmentation, bool(ann.get("iscrowd", 0)))

    def _images(self, path: Path, values: dict) -> dict:
        images = {}
        for image in values["images"]:
            if not isinstance(image, dict) or "id" not in image or not isinstance(image.get("file_name"), str):
                raise DataError(f"{path}: an entry of 'images' lacks 'id' or a text 'file_name': {str(image)[:80]}")
            with reading(path, f"image {image['file_name']!r}"):
                images[image["id"]] = image
        return images

    def _item(self, path: Path, image: dict, split_hint: str) -> ObjectItem:
        with reading(path, f"image {image['file_name']!r}: its height and width"):
            size = (int(image["height"]), int(image["width"])) if "height" in image and "width" in image else None
        return ObjectItem(find_image(self.root, path, image["file_name"], split_hint), annotation=path, size=size, objects=[])


class CocoSource(_CocoBase):
    """COCO instances (and stuff) annotations (see the module docstring)."""

    name = "coco"
    kind = "instances"

    def _items(self, group: list[tuple[Path, dict]]) -> list[ObjectItem]:
        items: dict = {}
        for path, values in group:
            hint = re.sub(r"^(instances|stuff)_", "", path.stem)
            for image_id, image in self._images(path, values).items():
                items.setdefault(image_id, self._item(path, image, hint))
            for ann in values.get("annotations") or []:
                image_id = ann.get("image_id") if isinstance(ann, dict) else None
                if image_id not in items:
                    raise DataError(f"{path}: annotation {ann.get('id') if isinstance(ann, dict) else ann!r} refers to image_id {image_id}, not in 'images'")
                items[image_id].objects.append(self._annotation_object(path, ann))
        return list(items.values())


def decode_panoptic_png(path: Path) -> np.ndarray:
    """Segment ids ``[H, W]`` of a COCO panoptic PNG: ``R + 256 G + 256^2 B``."""
    raw, mode, _ = read_label_png(path)
    if mode != "RGB":
        raise DataError(f"panoptic PNG {path} must be RGB (id = R + 256 G + 256^2 B), got mode {mode}")
    raw = raw.astype(np.int64)
    return raw[..., 0] + 256 * raw[..., 1] + 256 * 256 * raw[..., 2]


class CocoPanopticSource(_CocoBase):
    """COCO panoptic annotations: a PNG of segment ids per image plus ``segments_info``."""

    name = "coco_panoptic"
    kind = "panoptic"

    @property
    def unlabelled(self) -> int:
        return self.info.ignore_index

    def _items(self, group: list[tuple[Path, dict]]) -> list[ObjectItem]:
        items = []
        for path, values in group:
            images = self._images(path, values)
            png_dir = next((d for d in (path.parent / path.stem, self.root / path.stem) if d.is_dir()), path.parent / path.stem)
            for ann in values.get("annotations") or []:
                if not isinstance(ann, dict) or not isinstance(ann.get("segments_info"), list) or "file_name" not in ann:
                    raise DataError(f"{path}: a panoptic annotation lacks 'file_name' or a list 'segments_info'")
                if ann.get("image_id") not in images:
                    raise DataError(f"{path}: panoptic annotation {ann['file_name']} refers to image_id {ann.get('image_id')}, not in 'images'")
                item = self._item(path, images[ann["image_id"]], re.sub(r"^panoptic_", "", path.stem))
                item.objects, item.extra = None, {"png": png_dir / ann["file_name"], "segments": ann["segments_info"]}
                items.append(item)
        return items

    def load_objects(self, item: ObjectItem, size: tuple[int, int]) -> list[AnnotatedObject]:
        if not item.extra["png"].is_file():
            raise DataError(f"panoptic PNG {item.extra['png']}, listed in {item.annotation}, does not exist; check its file_name there")
        ids = decode_panoptic_png(item.extra["png"])
        if ids.shape != tuple(size):
            raise DataError(f"panoptic PNG {item.extra['png']} is {ids.shape[1]}x{ids.shape[0]} but image {item.image} is {size[1]}x{size[0]}")
        with reading(item.annotation, f"segments_info of {item.extra['png'].name}"):
            listed = {int(s["id"]) for s in item.extra["segments"]}
        unknown = set(np.unique(ids).tolist()) - listed - {0}
        if unknown:
            raise DataError(f"panoptic PNG {item.extra['png']} holds segment id {min(unknown)}, which its segments_info in "
                            f"{item.annotation.name} does not list")
        objects = []
        for segment in item.extra["segments"]:
            category = segment.get("category_id")
            if not isinstance(category, int) or category not in self.category_to_class:
                raise DataError(f"{item.annotation}: segment {segment.get('id')} of {item.extra['png'].name} has unknown category_id {category}")
            objects.append(AnnotatedObject(self.category_to_class[category], ids == int(segment["id"]), bool(segment.get("iscrowd", 0))))
        return objects


def write_coco(source, out: str | Path) -> Path:
    """Write any 2D DataSource as COCO instances: ``images/<split>/`` and ``annotations/instances_<split>.json``
    (data without splits: ``images/`` and ``annotations/instances.json``).

    Polygons stay polygons; bitmaps become compressed RLE. Category ids are the class ids when class 0
    is a background (which is left out), else class id + 1.
    """
    out, info = Path(out), source.info
    offset = 0 if has_background(info) else 1
    first = 1 if has_background(info) else 0
    categories = [{"id": c + offset, "name": info.class_names[c], "isthing": int(c in info.things),
                   "color": list(info.palette[c])} for c in range(first, info.num_classes)]
    files: dict[str, dict] = {}
    for record in records(source, "writing coco"):
        values = files.setdefault(record.split, {"images": [], "annotations": [], "categories": categories})
        image_path = write_image(record, out / "images" / ("" if record.split == UNSPLIT else record.split))
        image_id = len(values["images"]) + 1
        height, width = record.size
        values["images"].append({"id": image_id, "file_name": image_path.name, "height": height, "width": width})
        for obj, mask in zip(record.objects, record.object_masks()):
            if not first <= obj.label < info.num_classes or not mask.any():
                continue
            rle = encode_rle(mask)
            segmentation = obj.segmentation if isinstance(obj.segmentation, list) else rle
            values["annotations"].append({
                "id": sum(len(v["annotations"]) for v in files.values()) + 1, "image_id": image_id,
                "category_id": obj.label + offset, "segmentation": segmentation, "area": int(mask.sum()),
                "bbox": [float(v) for v in mask_utils.toBbox(rle)], "iscrowd": int(obj.iscrowd),
            })
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    for split, values in files.items():
        name = "instances.json" if split == UNSPLIT else f"instances_{split}.json"
        (out / "annotations" / name).write_text(json.dumps(values))
    return out
