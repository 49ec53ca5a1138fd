"""YOLO segmentation labels (Ultralytics)::

    DATA/data.yaml                  names: {0: person, ...} (or a list), train: images/train, val: images/val
    DATA/images/train/*.jpg         DATA/labels/train/*.txt   one object a line: ``class x1 y1 x2 y2 ...``

Coordinates are polygon vertices normalised to 0..1; a line of exactly four numbers is a box
(``cx cy w h``). An image without a label file has no objects. For semantic training the polygons are
rasterised in file order (later objects cover earlier ones) into class ids shifted by one, so that
0 is the background: YOLO class ``c`` is class ``c + 1``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import yaml

from omniseg.data.formats.paired import PairedItem, PairedSource
from omniseg.data.imageio import IMAGE_SUFFIXES, verify_image
from omniseg.data.sample import DatasetInfo
from omniseg.errors import DataError


def _manifest(root: Path) -> Path | None:
    for path in sorted(root.glob("*.yaml")) + sorted(root.glob("*.yml")):
        try:
            values = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            continue
        if isinstance(values, dict) and "names" in values and "train" in values:
            return path
    return None


def label_path(image: Path) -> Path:
    """Ultralytics' rule: the last ``images`` folder of the path becomes ``labels``, the suffix ``.txt``."""
    parts = list(image.parts)
    index = len(parts) - 1 - parts[::-1].index("images") if "images" in parts else None
    if index is None:
        return image.with_suffix(".txt")
    parts[index] = "labels"
    return Path(*parts).with_suffix(".txt")


def read_yolo_objects(path: Path, num_classes: int) -> list[tuple[int, np.ndarray]]:
    """``[(class, vertices [P, 2] normalised), ...]`` of one label file (boxes become 4-vertex polygons)."""
    objects = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        values = line.split()
        if not values:
            continue
        try:
            cls, coords = int(values[0]), np.array([float(v) for v in values[1:]])
        except ValueError:
            raise DataError(f"{path} line {number} is not 'class x1 y1 x2 y2 ...': {line[:60]!r}") from None
        if not 0 <= cls < num_classes:
            raise DataError(f"{path} line {number}: class {cls} is outside the {num_classes} names of the YAML")
        if len(coords) == 4:  # a box: cx cy w h
            cx, cy, w, h = coords
            coords = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy - h / 2, cx + w / 2, cy + h / 2, cx - w / 2, cy + h / 2])
        if len(coords) < 6 or len(coords) % 2:
            raise DataError(f"{path} line {number}: a polygon needs an even number (>= 6) of coordinates, got {len(coords)}")
        objects.append((cls, coords.reshape(-1, 2)))
    return objects


class YOLOSource(PairedSource):
    """A YOLO segmentation dataset (see the module docstring)."""

    name = "yolo"

    @staticmethod
    def detect(root: Path) -> bool:
        return _manifest(root) is not None and (root / "labels").is_dir()

    def __init__(self, root: str | Path, **_: object) -> None:
        self.root = Path(root)
        manifest = _manifest(self.root)
        if manifest is None:
            raise DataError(f"{self.root} has no YOLO data YAML (with 'names' and 'train'); add e.g. data.yaml")
        values = yaml.safe_load(manifest.read_text())
        names = values["names"]
        names = [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)
        self.yolo_classes = len(names)
        self.info = DatasetInfo(class_names=["background", *map(str, names)], things=list(range(1, len(names) + 1)))
        base = self.root / (values.get("path") or "") if not Path(values.get("path") or "").is_absolute() else Path(values["path"])
        if not base.is_dir():
            base = self.root  # the YAML's path points where Ultralytics downloaded it; the files are here
        self.items = {}
        for split in ("train", "val", "test"):
            entry = values.get(split)
            if entry:
                self.items[split] = [PairedItem(i, label_path(i)) for i in self._images(base, entry, manifest)]
        if not self.items.get("train"):
            raise DataError(f"{manifest}: the 'train' entry lists no images")
        self.description = f"yolo ({len(names)} classes + background, polygons rasterised)"

    def _images(self, base: Path, entry, manifest: Path) -> list[Path]:
        images = []
        for part in entry if isinstance(entry, list) else [entry]:
            path = base / str(part)
            if path.is_dir():
                images += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            elif path.suffix == ".txt" and path.is_file():
                images += [(base / line.strip()).resolve() for line in path.read_text().splitlines() if line.strip()]
            else:
                raise DataError(f"{manifest}: {part!r} is neither an image folder nor a list file under {base}")
        return images

    def read_mask(self, path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
        height, width = size
        mask = np.zeros((height, width), np.uint8 if self.yolo_classes < 255 else np.int32)
        if path.is_file():
            for cls, vertices in read_yolo_objects(path, self.yolo_classes):
                pixels = np.round(vertices * [width, height]).astype(np.int32)
                cv2.fillPoly(mask, [pixels], int(cls + 1))
        return mask.astype(np.int64)

    def image_size(self, item: PairedItem) -> tuple[int, int]:
        return verify_image(item.image)
