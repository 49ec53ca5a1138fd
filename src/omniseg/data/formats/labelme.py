"""LabelMe JSON: one file per image, beside it or pointing to it through ``imagePath``::

    DATA/*.json          {"imagePath": "a.jpg", "imageHeight": H, "imageWidth": W, "imageData": base64 | null,
                          "shapes": [{"label": "person", "points": [[x, y], ...], "shape_type": "polygon",
                                      "group_id": null | int}, ...]}
    DATA/labels.txt      optional class list as labelme2voc takes it (``__ignore__``, ``_background_``, names)

Polygons, rectangles (two corners) and circles (centre and a point on the rim) are regions; lines and
points are not and are skipped. Shapes with the same label and ``group_id`` form one object. Without
labels.txt, the classes are ``background`` plus the labels found, sorted. ``__ignore__`` shapes are
painted as ignore. Images embedded as ``imageData`` are used when the file is missing.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from omniseg.data.formats.base import read_json, read_text, reading
from omniseg.data.formats.objects import (
    BACKGROUND_NAMES, AnnotatedObject, ObjectItem, ObjectSource, ellipse_polygon, peek_text, rectangle_polygon, split_by_group,
)
from omniseg.data.formats.paired import seeded_split
from omniseg.data.imageio import check_image_size
from omniseg.data.sample import DEFAULT_IGNORE_INDEX, DatasetInfo
from omniseg.errors import DataError

IGNORE_LABEL = "__ignore__"


def _is_labelme(path: Path) -> bool:
    head = peek_text(path)
    return '"shapes"' in head or '"imagePath"' in head


def read_labelme(path: Path) -> dict:
    """A LabelMe file's content, checked for the keys omniseg uses."""
    values = read_json(path)
    if not isinstance(values, dict) or not isinstance(values.get("shapes"), list):
        raise DataError(f"{path} has no list 'shapes'; is it a LabelMe file?")
    for number, shape in enumerate(values["shapes"]):
        if not isinstance(shape, dict) or not isinstance(shape.get("label"), str) or not isinstance(shape.get("points"), list):
            raise DataError(f"{path}: shape {number} needs a text 'label' and a list 'points'")
        try:
            [(float(x), float(y)) for x, y in shape["points"]]
        except (TypeError, ValueError):
            raise DataError(f"{path}: shape {number} ({shape['label']!r}) has points that are not [x, y] numbers") from None
    return values


def shape_polygon(shape: dict) -> list[float] | None:
    """A LabelMe shape as a flat polygon, or None for shapes that are not regions (lines, points)."""
    points = [(float(x), float(y)) for x, y in shape["points"]]
    kind = shape.get("shape_type") or "polygon"
    if kind == "polygon" and len(points) >= 3:
        return [v for point in points for v in point]
    if kind == "rectangle" and len(points) == 2:
        return rectangle_polygon(*points[0], *points[1])
    if kind == "circle" and len(points) == 2:
        (cx, cy), (px, py) = points
        radius = float(np.hypot(px - cx, py - cy))
        return ellipse_polygon(cx, cy, radius, radius)
    return None


class LabelMeSource(ObjectSource):
    """A folder of LabelMe JSON files (see the module docstring)."""

    name = "labelme"

    @staticmethod
    def _files(root: Path) -> list[Path]:
        for folder in (root, root / "data_annotated", root / "annotations"):
            files = sorted(p for p in folder.glob("*.json") if _is_labelme(p)) if folder.is_dir() else []
            if files:
                return files
        return []

    @classmethod
    def detect(cls, root: Path) -> bool:
        return bool(cls._files(root))

    def __init__(self, root: str | Path, *, val_fraction: float = 0.2, split_seed: int = 0) -> None:
        self.root = Path(root)
        files = self._files(self.root)
        if not files:
            raise DataError(f"{self.root} has no LabelMe JSON files (with 'shapes' and 'imagePath')")
        contents = {path: read_labelme(path) for path in files}
        self.info, self.class_ids = self._classes(contents)
        items = []
        for path, values in contents.items():
            with reading(path, "imagePath, imageHeight and imageWidth"):
                image = path.parent / str(values.get("imagePath") or f"{path.stem}.jpg")
                size = (int(values["imageHeight"]), int(values["imageWidth"])) if values.get("imageHeight") and values.get("imageWidth") else None
                items.append(ObjectItem(image, annotation=path, size=size))
        self.items = seeded_split(items, val_fraction, split_seed)
        self.description = f"labelme ({len(files)} files, {self.info.num_classes} classes, seeded split)"

    def _classes(self, contents: dict[Path, dict]) -> tuple[DatasetInfo, dict[str, int]]:
        files = list(contents)
        labels_txt = next((p for p in (self.root / "labels.txt", files[0].parent / "labels.txt", self.root.parent / "labels.txt") if p.is_file()), None)
        if labels_txt is not None:
            names = [line.strip() for line in read_text(labels_txt).splitlines() if line.strip()]
        else:
            found = sorted({s["label"] for values in contents.values() for s in values["shapes"]} - {IGNORE_LABEL})
            names = ["background", *(n for n in found if n.lower() not in BACKGROUND_NAMES)]
        names = [n for n in names if n != IGNORE_LABEL]
        if not names or names[0].lower() not in BACKGROUND_NAMES:
            names = ["background", *names]
        with reading(labels_txt or files[0], "the class names"):
            info = DatasetInfo(names, things=list(range(1, len(names))), ignore_index=DEFAULT_IGNORE_INDEX)
        ids = {n: i for i, n in enumerate(names)} | {IGNORE_LABEL: info.ignore_index}
        return info, ids

    def load_image(self, item: ObjectItem) -> torch.Tensor:
        if item.image.is_file():
            return super().load_image(item)
        data = read_labelme(item.annotation).get("imageData")
        if data and not isinstance(data, str):
            raise DataError(f"{item.annotation}: imageData must be base64 text, got {type(data).__name__}")
        if not data:
            raise DataError(f"{item.annotation} points to image {item.image}, which does not exist, and embeds no imageData")
        try:
            image = Image.open(io.BytesIO(base64.b64decode(data)))
            check_image_size(image.height, image.width, item.annotation, "its imageData")
            image = image.convert("RGB")
        except (ValueError, UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
            raise DataError(f"{item.annotation}: imageData is not a readable image ({exc})") from None
        return torch.from_numpy(np.array(image)).permute(2, 0, 1).contiguous()

    def image_size(self, item: ObjectItem) -> tuple[int, int]:
        return item.size if item.size else tuple(self.load_image(item).shape[-2:])

    def load_objects(self, item: ObjectItem, size: tuple[int, int]) -> list[AnnotatedObject]:
        shapes = []
        for shape in read_labelme(item.annotation)["shapes"]:
            polygon = shape_polygon(shape)
            if polygon is None:
                continue
            if shape["label"] not in self.class_ids:
                raise DataError(f"{item.annotation}: label {shape['label']!r} is not in the class list "
                                f"({', '.join(self.info.class_names)}); add it to labels.txt")
            shapes.append((self.class_ids[shape["label"]], shape.get("group_id"), [polygon]))
        return split_by_group(shapes)
