"""CVAT XML, "CVAT for images 1.1"::

    DATA/annotations.xml     <annotations><meta><task|project><labels><label><name>cat</name>...</labels>
                               <image id="0" name="a.jpg" width="640" height="480" subset="train">
                                 <polygon label="cat" points="x1,y1;x2,y2;..." z_order="0" group_id="1"/>
                                 <box label="dog" xtl="" ytl="" xbr="" ybr=""/>
                                 <ellipse label="" cx="" cy="" rx="" ry=""/>
                                 <mask label="cat" rle="3, 5, 2, ..." left="" top="" width="" height=""/>
                               </image></annotations>
    DATA/images/a.jpg        (or beside the XML, or under images/<subset>/)

Shapes are painted by ``z_order`` (then file order); polylines and points are not regions and are
skipped; shapes sharing a ``group_id`` and label form one object. A mask's RLE counts alternate
background and foreground runs over its box, row by row, starting with background. ``subset`` gives
the split where present (CVAT's Train/Validation/Test), otherwise the split is seeded.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np

from omniseg.data.formats.base import reading
from omniseg.data.formats.objects import (
    AnnotatedObject, ObjectItem, ObjectSource, ellipse_polygon, peek_text, rectangle_polygon, split_by_group,
)
from omniseg.data.formats.paired import seeded_split
from omniseg.data.imageio import check_image_size
from omniseg.data.sample import DEFAULT_IGNORE_INDEX, DatasetInfo
from omniseg.errors import DataError

SUBSETS = {"train": "train", "training": "train", "validation": "val", "val": "val", "test": "test", "testing": "test"}


def _find(root: Path) -> Path | None:
    xml_files = sorted(root.glob("*.xml")) + sorted((root / "annotations").glob("*.xml"))
    return next((path for path in xml_files if "<annotations" in peek_text(path)), None)


def cvat_mask(element: ElementTree.Element, height: int, width: int) -> np.ndarray:
    """The full-image boolean mask of a CVAT ``<mask>`` element."""
    counts = [int(v) for v in element.get("rle", "").replace(" ", "").split(",") if v]
    left, top = int(float(element.get("left"))), int(float(element.get("top")))
    box_w, box_h = int(float(element.get("width"))), int(float(element.get("height")))
    if sum(counts) != box_w * box_h:
        raise ValueError(f"its RLE covers {sum(counts)} pixels but its box is {box_w}x{box_h} = {box_w * box_h}")
    values = np.repeat(np.arange(len(counts)) % 2 == 1, counts)
    mask = np.zeros((height, width), bool)
    box = values.reshape(box_h, box_w)[: max(0, height - top), : max(0, width - left)]
    mask[top : top + box.shape[0], left : left + box.shape[1]] = box
    return mask


def shape_geometry(element: ElementTree.Element, height: int, width: int):
    """The geometry of a CVAT shape element (flat polygon or bitmap), or None if it is not a region."""
    tag = element.tag
    if tag == "polygon":
        points = [float(v) for pair in element.get("points", "").split(";") if pair for v in pair.split(",")]
        return points if len(points) >= 6 else None
    if tag == "box":
        return rectangle_polygon(*(float(element.get(k)) for k in ("xtl", "ytl", "xbr", "ybr")))
    if tag == "ellipse":
        return ellipse_polygon(*(float(element.get(k)) for k in ("cx", "cy", "rx", "ry")), np.deg2rad(float(element.get("rotation", 0))))
    if tag == "mask":
        return cvat_mask(element, height, width)
    return None


class CVATSource(ObjectSource):
    """A CVAT for images 1.1 XML file and its images (see the module docstring)."""

    name = "cvat"

    @staticmethod
    def detect(root: Path) -> bool:
        return _find(root) is not None

    def __init__(self, root: str | Path, *, val_fraction: float = 0.2, split_seed: int = 0) -> None:
        self.root = Path(root)
        self.path = _find(self.root)
        if self.path is None:
            seen = ", ".join(p.name for p in sorted(self.root.glob("*.xml")) + sorted((self.root / "annotations").glob("*.xml")))
            raise DataError(f"{self.root} has no CVAT XML (a file with <annotations>); export 'CVAT for images 1.1'"
                            + (f" ({seen[:200]}: no <annotations>)" if seen else ""))
        try:
            tree = ElementTree.parse(self.path).getroot()
        except (ElementTree.ParseError, OSError, LookupError, ValueError) as exc:  # LookupError: an unknown encoding
            raise DataError(f"{self.path} is not well-formed XML ({exc}); re-export it from CVAT") from None
        images = tree.findall("image")
        names = [n.text.strip() for n in tree.findall("./meta//labels/label/name") if n.text and n.text.strip()]
        names += sorted({s.get("label") for i in images for s in i if s.get("label")} - set(names))
        with reading(self.path, "its labels"):
            self.info = DatasetInfo(["background", *names], things=list(range(1, len(names) + 1)), ignore_index=DEFAULT_IGNORE_INDEX)
        self.class_ids = {n: i + 1 for i, n in enumerate(names)}
        items, subsets = [], {}
        for image in images:
            name = image.get("name")
            try:
                size = (int(image.get("height")), int(image.get("width")))
            except (TypeError, ValueError):
                raise DataError(f"{self.path}: <image name={name!r}> needs integer width and height") from None
            check_image_size(*size, self.path, f"<image name={name!r}>")  # before its masks are drawn at that size
            if not name:
                raise DataError(f"{self.path}: an <image> element has no name")
            subset = SUBSETS.get((image.get("subset") or "").lower(), (image.get("subset") or "").lower() or None)
            path = next((p for p in (self.path.parent / name, self.root / "images" / name, self.root / "images" / (subset or "") / name,
                                     self.root / name) if p.is_file()), self.root / "images" / name)
            with reading(self.path, f"<image name={name!r}>"):
                item = ObjectItem(path, annotation=self.path, size=size, objects=self._objects(image, size))
            items.append(item)
            subsets.setdefault(subset, []).append(item)
        if not items:
            raise DataError(f"{self.path} lists no <image> elements")
        self.items = {k: v for k, v in subsets.items() if k} if None not in subsets else seeded_split(items, val_fraction, split_seed)
        self.description = f"cvat ({len(items)} images, {len(names)} labels)"

    def _objects(self, image: ElementTree.Element, size: tuple[int, int]) -> list[AnnotatedObject]:
        shapes = []
        with reading(self.path, f"the z_order of the shapes of image {image.get('name')!r}"):
            elements = sorted(enumerate(image), key=lambda e: (int(e[1].get("z_order", 0) or 0), e[0]))
        for _, element in elements:
            try:
                geometry = shape_geometry(element, *size)
            except (TypeError, ValueError, OverflowError) as exc:
                raise DataError(f"{self.path}: <{element.tag}> of image {image.get('name')!r} is malformed ({exc})") from None
            if geometry is None:
                continue
            label = element.get("label")
            if label not in self.class_ids:
                raise DataError(f"{self.path}: <{element.tag}> of image {image.get('name')!r} has no known label ({label!r})")
            group = element.get("group_id")
            segmentation = geometry if isinstance(geometry, np.ndarray) else [geometry]
            shapes.append((self.class_ids[label], None if group in (None, "", "0") else group, segmentation))
        return split_by_group(shapes)
