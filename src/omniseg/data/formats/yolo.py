"""YOLO segmentation labels (Ultralytics)::

    DATA/data.yaml                  names: {0: person, ...} (or a list), train: images/train, val: images/val
    DATA/images/train/*.jpg         DATA/labels/train/*.txt   one object a line: ``class x1 y1 x2 y2 ...``

Coordinates are polygon vertices normalised to 0..1; a line of exactly four numbers is a box
(``cx cy w h``). An image without a label file has no objects. Every line is an instance; for
semantic training the polygons are rasterised in file order (later objects cover earlier ones). Class
ids are shifted by one, so that 0 is the background: YOLO class ``c`` is class ``c + 1``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from skimage import measure

from omniseg.data.formats.base import read_text, read_yaml, reading
from omniseg.data.formats.objects import AnnotatedObject, ObjectItem, ObjectSource
from omniseg.data.formats.paired import UNSPLIT, seeded_split
from omniseg.data.formats.records import has_background, records, write_image
from omniseg.data.imageio import IMAGE_SUFFIXES
from omniseg.data.sample import DEFAULT_IGNORE_INDEX, DatasetInfo
from omniseg.errors import DataError


def _manifests(root: Path) -> list[Path]:
    return sorted(root.glob("*.yaml")) + sorted(root.glob("*.yml"))


def _manifest(root: Path) -> Path | None:
    for path in _manifests(root):
        try:
            values = read_yaml(path)
        except DataError:
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


def read_yolo_objects(path: Path, num_classes: int, manifest: str = "the YAML") -> list[tuple[int, np.ndarray]]:
    """``[(class, vertices [P, 2] normalised), ...]`` of one label file (boxes become 4-vertex polygons)."""
    objects = []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        values = line.split()
        if not values:
            continue
        try:
            cls, coords = int(values[0]), np.array([float(v) for v in values[1:]])
        except ValueError:
            raise DataError(f"{path} line {number} is not 'class x1 y1 x2 y2 ...': {line[:60]!r}") from None
        if not np.isfinite(coords).all():
            raise DataError(f"{path} line {number} has a coordinate that is not a finite number: {line[:60]!r}")
        if not 0 <= cls < num_classes:
            raise DataError(f"{path} line {number}: class {cls} is outside the {num_classes} names of {manifest}")
        if len(coords) == 4:  # a box: cx cy w h
            cx, cy, w, h = coords
            coords = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy - h / 2, cx + w / 2, cy + h / 2, cx - w / 2, cy + h / 2])
        if len(coords) < 6 or len(coords) % 2:
            raise DataError(f"{path} line {number}: a polygon needs an even number (>= 6) of coordinates, got {len(coords)}")
        objects.append((cls, coords.reshape(-1, 2)))
    return objects


class YOLOSource(ObjectSource):
    """A YOLO segmentation dataset (see the module docstring)."""

    name = "yolo"

    @staticmethod
    def detect(root: Path) -> bool:
        return _manifest(root) is not None and (root / "labels").is_dir()

    def __init__(self, root: str | Path, *, val_fraction: float = 0.2, split_seed: int = 0) -> None:
        self.root = Path(root)
        manifest = _manifest(self.root)
        if manifest is None:
            seen = ", ".join(p.name for p in _manifests(self.root))
            raise DataError(f"{self.root} has no YOLO data YAML (with 'names' and 'train'); add e.g. data.yaml"
                            + (f" ({seen[:200]}: no 'names' and 'train')" if seen else ""))
        self.manifest, values = manifest, read_yaml(manifest)
        names = values["names"]
        if not isinstance(names, (dict, list)) or not names:
            raise DataError(f"{manifest}: 'names' must be a list or a mapping of class names, got {str(names)[:60]!r}")
        with reading(manifest, "'names'"):
            names = [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)
            self.yolo_classes = len(names)
            self.info = DatasetInfo(class_names=["background", *map(str, names)], things=list(range(1, len(names) + 1)),
                                    ignore_index=DEFAULT_IGNORE_INDEX)
        with reading(manifest, "'path'"):
            declared = Path(str(values.get("path") or ""))
            base = declared if declared.is_absolute() else self.root / declared
            if not base.is_dir():
                base = self.root  # the YAML's path points where Ultralytics downloaded it; the files are here
        self.items = {}
        for split in ("train", "val", "test"):
            entry = values.get(split)
            if entry:
                with reading(manifest, f"{split!r}"):
                    self.items[split] = [ObjectItem(i, annotation=label_path(i)) for i in self._images(base, entry, manifest)]
        if not self.items.get("train"):
            raise DataError(f"{manifest}: the 'train' entry lists no images")
        if set(self.items) == {"train"}:  # one set of images, as for any format without splits: seeded
            self.items = seeded_split(self.items["train"], val_fraction, split_seed)
        self.description = f"yolo ({len(names)} classes + background, polygons rasterised)"

    def _images(self, base: Path, entry, manifest: Path) -> list[Path]:
        images = []
        for part in entry if isinstance(entry, list) else [entry]:
            path = base / str(part)
            if path.is_dir():
                images += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            elif path.suffix == ".txt" and path.is_file():
                images += [(base / line.strip()).resolve() for line in read_text(path).splitlines() if line.strip()]
            else:
                raise DataError(f"{manifest}: {part!r} is neither an image folder nor a list file under {base}")
        return images

    def load_objects(self, item: ObjectItem, size: tuple[int, int]) -> list[AnnotatedObject]:
        if not item.annotation.is_file():
            return []
        scale = np.array([size[1], size[0]], np.float64)
        return [AnnotatedObject(cls + 1, [(vertices * scale).reshape(-1).tolist()])
                for cls, vertices in read_yolo_objects(item.annotation, self.yolo_classes, self.manifest.name)]


def mask_polygons(mask: np.ndarray) -> list[np.ndarray]:
    """Outer polygons ``[P, 2]`` (x, y in pixels) of a boolean mask, traced halfway between inside and
    outside pixel centres, so that rasterising them (a pixel is in when its centre is) gives the mask
    back, up to holes, which are left out."""
    padded = np.pad(mask.astype(np.float32), 1)
    polygons = []
    for contour in measure.find_contours(padded, 0.5, positive_orientation="high"):
        rows, cols = contour[:, 0], contour[:, 1]
        if np.sum(cols * np.roll(rows, -1) - np.roll(cols, -1) * rows) >= 0:  # a hole runs the other way round
            continue
        simplified = measure.approximate_polygon(contour, tolerance=0)[:-1]
        if len(simplified) >= 3:
            polygons.append(simplified[:, ::-1] - 0.5)  # (row, col) of the padded array -> (x, y)
    return polygons


def object_polygons(obj: AnnotatedObject, mask: np.ndarray) -> list[np.ndarray]:
    """The polygons ``[P, 2]`` (pixels) of an object: its own where it has them, else traced from its mask."""
    if isinstance(obj.segmentation, list):
        return [np.asarray(p, np.float64).reshape(-1, 2) for p in obj.segmentation if len(p) >= 6]
    return mask_polygons(mask)


def write_yolo(source, out: str | Path) -> Path:
    """Write any 2D DataSource as YOLO segmentation: ``images/<split>/``, ``labels/<split>/*.txt`` (one
    polygon a line, normalised) and ``data.yaml``. Objects keep their polygons; bitmaps are traced
    (outer outlines, see :func:`mask_polygons`). Crowd regions are left out: YOLO has no such notion. Data
    without splits is written as ``images/``, ``labels/`` and a ``train`` entry alone."""
    out, info = Path(out), source.info
    first = 1 if has_background(info) else 0
    splits = set()
    for record in records(source, "writing yolo"):
        folder = "" if record.split == UNSPLIT else record.split
        write_image(record, out / "images" / folder)
        splits.add(record.split)
        height, width = record.size
        lines = []
        for obj, mask in zip(record.objects, record.object_masks()):
            if obj.iscrowd or not first <= obj.label < info.num_classes:
                continue
            for polygon in object_polygons(obj, mask):
                coords = np.clip(polygon / [width, height], 0.0, 1.0).reshape(-1)
                lines.append(" ".join([str(obj.label - first), *(f"{v:.6f}" for v in coords)]))
        (out / "labels" / folder).mkdir(parents=True, exist_ok=True)
        (out / "labels" / folder / f"{record.stem}.txt").write_text("".join(f"{line}\n" for line in lines))
    entries = {"train": "images"} if splits == {UNSPLIT} else {s: f"images/{s}" for s in sorted(splits)}
    manifest = {"path": ".", **entries,
                "names": {i: name for i, name in enumerate(info.class_names[first:])}}
    (out / "data.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return out
