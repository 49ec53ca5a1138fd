"""VGG Image Annotator (VIA) 2.x JSON, as exported ("Export annotations as json") or as a project::

    DATA/via_region_data.json   {"a.jpg12345": {"filename": "a.jpg", "size": 12345,
                                  "regions": [{"shape_attributes": {"name": "polygon", "all_points_x": [...],
                                               "all_points_y": [...]}, "region_attributes": {"class": "cat"}}]}}
    DATA/a.jpg                  (or DATA/images/a.jpg)

A project file holds the same under ``_via_img_metadata``. Regions may be polygons, rectangles, circles
or ellipses; points and polylines are skipped. The class is the value of a region attribute: ``attribute``
if given, else the first of class/label/name/type present (a checkbox attribute gives its ticked key);
regions without one are ``object``. Classes are ``background`` plus the values found, sorted.
"""

from __future__ import annotations

from pathlib import Path

from omniseg.data.formats.objects import (
    BACKGROUND_NAMES, AnnotatedObject, ObjectItem, ObjectSource, ellipse_polygon, peek_text, rectangle_polygon,
)
from omniseg.data.formats.base import read_json, reading
from omniseg.data.formats.paired import seeded_split
from omniseg.data.sample import DEFAULT_IGNORE_INDEX, DatasetInfo
from omniseg.errors import DataError

CLASS_ATTRIBUTES = ("class", "label", "name", "type", "category")


def _metadata(values) -> dict | None:
    if isinstance(values, dict) and isinstance(values.get("_via_img_metadata"), dict):
        return values["_via_img_metadata"]
    if isinstance(values, dict) and values and all(isinstance(v, dict) and "filename" in v and "regions" in v for v in values.values()):
        return values
    return None


def _candidates(root: Path) -> list[Path]:
    return sorted(root.glob("*.json")) + sorted((root / "annotations").glob("*.json"))


def _find(root: Path) -> tuple[Path, dict] | None:
    for path in _candidates(root):
        head = peek_text(path)
        if '"regions"' not in head and "_via_img_metadata" not in head:
            continue
        try:
            metadata = _metadata(read_json(path))
        except DataError:
            continue
        if metadata is not None:
            return path, metadata
    return None


def region_polygon(shape: dict) -> list[float] | None:
    """A VIA ``shape_attributes`` dict as a flat polygon, or None for points and polylines."""
    kind = shape.get("name")
    if kind == "polygon":
        xs, ys = shape.get("all_points_x") or [], shape.get("all_points_y") or []
        if len(xs) != len(ys):
            raise ValueError(f"all_points_x has {len(xs)} values but all_points_y {len(ys)}")
        return [float(v) for point in zip(xs, ys) for v in point] if len(xs) >= 3 else None
    if kind == "rect":
        x, y = float(shape["x"]), float(shape["y"])
        return rectangle_polygon(x, y, x + float(shape["width"]), y + float(shape["height"]))
    if kind == "circle":
        return ellipse_polygon(float(shape["cx"]), float(shape["cy"]), float(shape["r"]), float(shape["r"]))
    if kind == "ellipse":
        return ellipse_polygon(float(shape["cx"]), float(shape["cy"]), float(shape["rx"]), float(shape["ry"]), float(shape.get("theta", 0)))
    return None


def region_class(attributes: dict, attribute: str | None) -> str:
    keys = [attribute] if attribute else [k for k in CLASS_ATTRIBUTES if k in attributes] or list(attributes)[:1]
    for key in keys:
        value = attributes.get(key)
        if isinstance(value, dict):  # checkbox: {"cat": true}
            value = next((k for k, ticked in value.items() if ticked), None)
        if isinstance(value, (str, int)) and str(value).strip():
            return str(value).strip()
    return "object"


class VIASource(ObjectSource):
    """A VIA 2.x annotation file and its images (see the module docstring).

    Args:
        attribute: the region attribute that holds the class (default: found by name).
    """

    name = "via"

    @staticmethod
    def detect(root: Path) -> bool:
        return _find(root) is not None

    def __init__(self, root: str | Path, *, attribute: str | None = None, val_fraction: float = 0.2, split_seed: int = 0) -> None:
        self.root = Path(root)
        found = _find(self.root)
        if found is None:
            seen = ", ".join(p.name for p in _candidates(self.root)[:5])
            raise DataError(f"{self.root} has no VIA 2.x JSON (an export with 'regions', or a project with '_via_img_metadata')"
                            + (f"; {seen} {'is' if ',' not in seen else 'are'} not one" if seen else ""))
        self.path, metadata = found
        entries = []
        for key, entry in metadata.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("filename"), str):
                raise DataError(f"{self.path}: entry {key!r} has no text 'filename'")
            regions = entry.get("regions")
            regions = list(regions.values()) if isinstance(regions, dict) else regions  # VIA 1.x kept a dict
            if not isinstance(regions, list):
                raise DataError(f"{self.path}: entry {key!r} has 'regions' that is not a list")
            objects = []
            for number, region in enumerate(regions):
                shape = region.get("shape_attributes") if isinstance(region, dict) else None
                if not isinstance(shape, dict):
                    raise DataError(f"{self.path}: {entry['filename']} region {number} has no 'shape_attributes'")
                with reading(self.path, f"{entry['filename']} region {number} ({str(shape.get('name'))[:20]})"):
                    polygon = region_polygon(shape)
                    if polygon is not None:
                        objects.append((region_class(region.get("region_attributes") or {}, attribute), polygon))
            entries.append((entry["filename"], objects))
        names = sorted({name for _, objects in entries for name, _ in objects} - BACKGROUND_NAMES)
        self.info = DatasetInfo(["background", *names], things=list(range(1, len(names) + 1)), ignore_index=DEFAULT_IGNORE_INDEX)
        ids = {n: i for i, n in enumerate(self.info.class_names)} | {b: 0 for b in BACKGROUND_NAMES}
        items = []
        for filename, objects in entries:
            image = next((p for p in (self.path.parent / filename, self.root / filename, self.root / "images" / filename) if p.is_file()),
                         self.path.parent / filename)
            items.append(ObjectItem(image, annotation=self.path, objects=[AnnotatedObject(ids[n], [p]) for n, p in objects]))
        if not items:
            raise DataError(f"{self.path} lists no images")
        self.items = seeded_split(items, val_fraction, split_seed)
        self.description = f"via ({len(items)} images, {self.info.num_classes} classes, seeded split)"
