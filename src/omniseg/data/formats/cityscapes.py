"""Cityscapes (fine annotations)::

    DATA/leftImg8bit/{train,val,test}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    DATA/gtFine/{train,val,test}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png      (and _instanceIds.png: labelId * 1000 + k for things)

The 34 annotation ids of ``*_labelIds.png`` become the 19 training classes by the official table
(cityscapesScripts ``labels.py``): road 7 -> 0, ..., bicycle 33 -> 18; every other id (unlabeled,
ego vehicle, parking, rail track, guard rail, ...) is ignored (255). The test split has no public
labels, so it is read without masks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from omniseg.data.formats.paired import PairedItem, PairedSource, instances_from_ids
from omniseg.data.imageio import read_label_png
from omniseg.data.sample import DEFAULT_IGNORE_INDEX, DatasetInfo
from omniseg.errors import DataError

# (train id, name, colour) of the 19 evaluated classes, and the annotation id of each
CITYSCAPES_CLASSES = [
    (7, "road", (128, 64, 128)), (8, "sidewalk", (244, 35, 232)), (11, "building", (70, 70, 70)),
    (12, "wall", (102, 102, 156)), (13, "fence", (190, 153, 153)), (17, "pole", (153, 153, 153)),
    (19, "traffic light", (250, 170, 30)), (20, "traffic sign", (220, 220, 0)), (21, "vegetation", (107, 142, 35)),
    (22, "terrain", (152, 251, 152)), (23, "sky", (70, 130, 180)), (24, "person", (220, 20, 60)),
    (25, "rider", (255, 0, 0)), (26, "car", (0, 0, 142)), (27, "truck", (0, 0, 70)), (28, "bus", (0, 60, 100)),
    (31, "train", (0, 80, 100)), (32, "motorcycle", (0, 0, 230)), (33, "bicycle", (119, 11, 32)),
]
NUM_LABEL_IDS = 34  # annotation ids 0..33 (license plate, -1, never appears in the PNGs)


def label_id_to_train_id() -> np.ndarray:
    """Lookup table ``[256]``: annotation id -> train id (0..18), 255 for ignored ids, -1 for invalid ids."""
    table = np.full(256, -1, np.int64)
    table[:NUM_LABEL_IDS] = DEFAULT_IGNORE_INDEX
    for train_id, (label_id, _, _) in enumerate(CITYSCAPES_CLASSES):
        table[label_id] = train_id
    return table


class CityscapesSource(PairedSource):
    """Cityscapes fine annotations with the official 19 training classes (see the module docstring)."""

    name = "cityscapes"

    @staticmethod
    def detect(root: Path) -> bool:
        return (root / "leftImg8bit").is_dir() and (root / "gtFine").is_dir()

    def __init__(self, root: str | Path, **_: object) -> None:
        self.root = Path(root)
        if not self.detect(self.root):
            raise DataError(f"{self.root} is not a Cityscapes folder: expected leftImg8bit/ and gtFine/ "
                            "(download both packages from cityscapes-dataset.com, which needs a login)")
        self.info = DatasetInfo(class_names=[n for _, n, _ in CITYSCAPES_CLASSES],
                                palette=[c for _, _, c in CITYSCAPES_CLASSES], things=list(range(11, 19)),
                                ignore_index=DEFAULT_IGNORE_INDEX)
        self.lookup = label_id_to_train_id()
        self.items = {}
        for split_dir in sorted(p for p in (self.root / "leftImg8bit").iterdir() if p.is_dir()):
            split, items = split_dir.name, []
            for image in sorted(split_dir.glob("*/*_leftImg8bit.png")):
                stem = image.name[: -len("_leftImg8bit.png")]
                mask = self.root / "gtFine" / split / image.parent.name / f"{stem}_gtFine_labelIds.png"
                if not mask.is_file() and split != "test":
                    raise DataError(f"image {image} has no annotation {mask}; add it or remove the image")
                instances = mask.with_name(f"{stem}_gtFine_instanceIds.png")
                items.append(PairedItem(image, mask if mask.is_file() else None, instances if instances.is_file() else None))
            if items and any(i.mask for i in items) and not all(i.mask for i in items):
                missing = next(i.image for i in items if i.mask is None)
                raise DataError(f"image {missing} has no gtFine annotation while others in {split} do")
            self.items[split] = items
        if not any(self.items.values()):
            raise DataError(f"no *_leftImg8bit.png images under {self.root / 'leftImg8bit'}/<split>/<city>/")
        self.description = "cityscapes (gtFine labelIds -> 19 train ids, 255 = ignore)"

    def read_instances(self, item: PairedItem, semantic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Instances of ``*_instanceIds.png``: ids >= 1000 are ``labelId * 1000 + k``; smaller ones are
        stuff or groups without instance (e.g. a crowd of cars) and are not instances."""
        raw, mode, _ = read_label_png(item.instances)
        if raw.shape != semantic.shape or mode == "RGB":
            raise DataError(f"{item.instances} must be a 16-bit id image of the size of its labelIds PNG")
        ids = np.where(raw >= 1000, raw, 0)
        return instances_from_ids(ids, semantic, self.info.ignore_index)

    def decode_mask(self, raw: np.ndarray, mode: str, path: Path) -> np.ndarray:
        if mode in ("RGB", "P"):
            raise DataError(f"{path} is a colour image; read the *_gtFine_labelIds.png files, not *_color.png")
        ids = self.lookup[np.clip(raw, 0, 255)]
        if (ids < 0).any() or raw.max(initial=0) > 255:
            bad = int(raw[(raw > 255) | (self.lookup[np.clip(raw, 0, 255)] < 0)][0])
            raise DataError(f"{path} holds annotation id {bad}; Cityscapes labelIds run 0..{NUM_LABEL_IDS - 1}")
        return ids
