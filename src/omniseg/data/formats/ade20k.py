"""ADE20K, in its two releases.

SceneParsing (ADEChallengeData2016, the 150-class benchmark)::

    DATA/images/{training,validation}/ADE_*.jpg
    DATA/annotations/{training,validation}/ADE_*.png    0 = other (ignored), 1..150 = the classes
    DATA/objectInfo150.txt or .csv                     optional: the class names

Class ``v`` of a PNG is class ``v - 1`` here, and 0 becomes ignore_index (the benchmark's rule).

The full dataset (ADE20K_2021_17_01)::

    DATA/images/ADE/{training,validation}/<scene>/.../ADE_train_*.jpg
    ... ADE_train_*_seg.png     class = R / 10 * 256 + G, instance = B (R, G, B of each pixel)
    ... ADE_train_*.json        per-image objects: name, name_ndx (the class the _seg.png holds), parts

The full class list (3,688 names) is in ``index_ade20k.pkl``, a pickle: omniseg never unpickles
files, so the names come from the per-image JSON files (read once at open). The classes are the
whole objects (part level 0) found, in ADE index order; pixels of class 0 are unlabelled (ignored).
Parts (``_parts_N.png``) are not read. Without a validation folder, part of training is held out (seeded). Instances are the distinct B values of each class.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from omniseg.data.formats.objects import AnnotatedObject, ObjectItem, ObjectSource
from omniseg.data.formats.paired import PairedItem, PairedSource, seeded_split
from omniseg.data.imageio import read_label_png
from omniseg.data.sample import DEFAULT_IGNORE_INDEX, DatasetInfo
from omniseg.errors import DataError

ADE150_CLASSES = [
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet", "sidewalk",
    "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water", "painting", "sofa",
    "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp",
    "bathtub", "railing", "cushion", "base", "box", "column", "signboard", "chest of drawers", "counter", "sand", "sink",
    "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs", "runway", "case", "pool table", "pillow",
    "screen door", "stairway", "river", "bridge", "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill",
    "bench", "countertop", "stove", "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine",
    "hovel", "bus", "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth",
    "television receiver", "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman",
    "bottle", "buffet", "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything",
    "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food",
    "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket",
    "sculpture", "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate",
    "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
]
SPLITS = {"training": "train", "validation": "val"}


def _scene_parsing_root(root: Path) -> Path | None:
    for candidate in (root, root / "ADEChallengeData2016"):
        if (candidate / "annotations" / "training").is_dir() and (candidate / "images" / "training").is_dir():
            return candidate
    return None


def _full_root(root: Path) -> Path | None:
    for candidate in (root / "images" / "ADE", root / "ADE20K_2021_17_01" / "images" / "ADE", root / "ADE", root):
        if any((candidate / s).is_dir() for s in SPLITS) and next(candidate.glob("*/**/*_seg.png"), None) is not None:
            return candidate
    return None


def _class_names_file(root: Path) -> list[str] | None:
    """The short names of objectInfo150.txt/.csv (tab or comma separated; the last column, first synonym)."""
    for path in (root / "objectInfo150.txt", root / "objectInfo150.csv"):
        if path.is_file():
            rows = [line for line in path.read_text().splitlines()[1:] if line.strip()]
            names = [line.replace("\t", ",").split(",")[4 if path.suffix == ".csv" else -1].split(";")[0].strip().strip('"')
                     for line in rows]
            if len(names) == 150:
                return names
    return None


def decode_full_seg(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ADE20K full-format ``_seg.png`` RGB -> (class index ``R / 10 * 256 + G``, instance ids ``B``).

    Example:
        >>> decode_full_seg(np.array([[[20, 5, 7]]], np.uint8))[0].tolist()
        [[517]]
    """
    raw = raw.astype(np.int64)
    return raw[..., 0] // 10 * 256 + raw[..., 1], raw[..., 2]


class ADE20KSource(PairedSource):
    """ADE20K SceneParsing (ADEChallengeData2016, 150 classes); see the module docstring."""

    name = "ade20k"

    @staticmethod
    def detect(root: Path) -> bool:
        return _scene_parsing_root(root) is not None

    def __init__(self, root: str | Path, **_: object) -> None:
        self.root = _scene_parsing_root(Path(root))
        if self.root is None:
            raise DataError(f"{root} has no ADEChallengeData2016 layout (images/training/, annotations/training/)")
        self.info = DatasetInfo(_class_names_file(self.root) or ADE150_CLASSES, ignore_index=DEFAULT_IGNORE_INDEX)
        self.items = {}
        for folder, split in SPLITS.items():
            images = sorted((self.root / "images" / folder).glob("*.jpg"))
            annotations = self.root / "annotations" / folder
            self.items[split] = [PairedItem(i, annotations / f"{i.stem}.png" if (annotations / f"{i.stem}.png").is_file() else None)
                                 for i in images]
        self.description = "ade20k scene parsing (150 classes, 0 = other is ignored)"

    def decode_mask(self, raw: np.ndarray, mode: str, path: Path) -> np.ndarray:
        mask = super().decode_mask(raw, mode, path) - 1
        mask[mask < 0] = self.info.ignore_index
        return mask


class ADE20KFullSource(ObjectSource):
    """The full ADE20K release (``_seg.png`` + per-image JSON); see the module docstring."""

    name = "ade20k_full"

    @staticmethod
    def detect(root: Path) -> bool:
        return _full_root(root) is not None

    def __init__(self, root: str | Path, *, val_fraction: float = 0.2, split_seed: int = 0) -> None:
        self.root = Path(root)
        base = _full_root(self.root)
        if base is None:
            raise DataError(f"{root} has no ADE20K full-format images (images/ADE/<split>/**/*_seg.png)")
        ade_names: dict[int, str] = {}
        self.items = {}
        for folder, split in SPLITS.items():
            items = []
            for seg in sorted((base / folder).glob("**/*_seg.png")):
                image = seg.with_name(seg.name[: -len("_seg.png")] + ".jpg")
                annotation = image.with_suffix(".json")
                for obj in self._json_objects(annotation):
                    ade_names.setdefault(int(obj["name_ndx"]), str(obj["name"]).split(",")[0].strip())
                items.append(ObjectItem(image, annotation=annotation, extra={"seg": seg}))
            self.items[split] = items
        if not any(self.items.values()):
            raise DataError(f"{base} holds no *_seg.png files")
        if not self.items["val"]:  # a partial copy without validation/: hold out part of training
            self.items = seeded_split(self.items["train"], val_fraction, split_seed)
        self.ade_index = sorted(ade_names)
        self.ade_to_class = {ade: i for i, ade in enumerate(self.ade_index)}
        count = len(self.ade_index)
        self.info = DatasetInfo([ade_names[i] for i in self.ade_index], ignore_index=DEFAULT_IGNORE_INDEX if count <= DEFAULT_IGNORE_INDEX else 65535,
                                things=list(range(count)))
        self.description = f"ade20k full ({count} classes found in the per-image JSON files)"

    @property
    def unlabelled(self) -> int:
        return self.info.ignore_index

    @staticmethod
    def _json_objects(path: Path) -> list[dict]:
        if not path.is_file():
            return []
        try:
            values = json.loads(path.read_text(encoding="utf-8", errors="replace"))
            objects = values["annotation"]["object"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(f"{path} is not an ADE20K annotation (annotation.object missing or bad JSON: {exc})") from None
        return [o for o in objects if isinstance(o, dict) and "name_ndx" in o and (o.get("parts") or {}).get("part_level", 0) == 0]

    def load_objects(self, item: ObjectItem, size: tuple[int, int]) -> list[AnnotatedObject]:
        raw, mode, _ = read_label_png(item.extra["seg"])
        if mode != "RGB":
            raise DataError(f"{item.extra['seg']} must be an RGB _seg.png (class = R/10*256 + G), got mode {mode}")
        classes, instances = decode_full_seg(raw)
        if classes.shape != tuple(size):
            raise DataError(f"{item.extra['seg']} is {classes.shape[1]}x{classes.shape[0]} but {item.image} is {size[1]}x{size[0]}")
        objects = []
        for ade in np.unique(classes).tolist():
            if ade == 0:
                continue
            if ade not in self.ade_to_class:
                raise DataError(f"{item.extra['seg']} holds ADE class {ade}, which no per-image JSON names; is {item.annotation} missing?")
            region = classes == ade
            for instance in np.unique(instances[region]).tolist():
                objects.append(AnnotatedObject(self.ade_to_class[ade], region & (instances == instance)))
        return objects
