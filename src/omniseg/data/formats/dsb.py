"""Instance folders in the layout of the 2018 Data Science Bowl (nuclei), one PNG per object::

    DATA/<id>/images/<id>.png     the image (RGBA is read as RGB)
    DATA/<id>/masks/*.png         one binary mask per instance (0 and 255, any non-zero value is the object)

Every object is one class (``object``, class 1; background 0). The split is seeded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from omniseg.data.formats.objects import AnnotatedObject, ObjectItem, ObjectSource
from omniseg.data.formats.paired import seeded_split
from omniseg.data.imageio import list_image_files, read_label_png
from omniseg.data.sample import DEFAULT_IGNORE_INDEX, DatasetInfo
from omniseg.errors import DataError


def _cases(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir() if d.is_dir() and (d / "images").is_dir() and (d / "masks").is_dir())


class DSBSource(ObjectSource):
    """A folder of ``<id>/images/`` + ``<id>/masks/`` cases (see the module docstring)."""

    name = "dsb"

    @staticmethod
    def detect(root: Path) -> bool:
        return bool(_cases(root))

    def __init__(self, root: str | Path, *, val_fraction: float = 0.2, split_seed: int = 0) -> None:
        self.root = Path(root)
        cases = _cases(self.root)
        if not cases:
            raise DataError(f"{self.root} has no <id>/images/ and <id>/masks/ folders (Data Science Bowl layout)")
        items = []
        for case in cases:
            images = list_image_files(case / "images")
            if len(images) != 1:
                raise DataError(f"{case / 'images'} holds {len(images)} images; each case needs exactly one")
            masks = list_image_files(case / "masks")
            items.append(ObjectItem(images[0], annotation=case / "masks", extra={"masks": masks}))
        self.info = DatasetInfo(["background", "object"], things=[1], ignore_index=DEFAULT_IGNORE_INDEX)
        self.items = seeded_split(items, val_fraction, split_seed)
        self.description = f"dsb instance folders ({len(items)} images, seeded split)"

    def load_objects(self, item: ObjectItem, size: tuple[int, int]) -> list[AnnotatedObject]:
        objects = []
        for path in item.extra["masks"]:
            raw, mode, _ = read_label_png(path)
            mask = (raw.any(axis=-1) if raw.ndim == 3 else raw > 0)
            if mask.shape != tuple(size):
                raise DataError(f"instance mask {path} is {mask.shape[1]}x{mask.shape[0]} but image {item.image} is {size[1]}x{size[0]}")
            if mask.any():
                objects.append(AnnotatedObject(1, np.ascontiguousarray(mask)))
        return objects
