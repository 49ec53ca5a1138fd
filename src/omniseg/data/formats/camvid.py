"""CamVid, in the two layouts people have.

SegNet's 11-class version (what most papers report)::

    DATA/train/*.png   DATA/trainannot/*.png     class-index PNGs: 0..10 = Sky ... Bicyclist, 11 = Unlabelled
    DATA/val/          DATA/valannot/
    DATA/test/         DATA/testannot/

The original 32-class release, colour-coded::

    DATA/label_colors.txt                        "R G B<tab>Name" per class ("0 0 0 Void" = unlabelled)
    DATA/701_StillsRaw_full/*.png (or images/)   DATA/LabeledApproved_full/*_L.png (or labels/)

The 11-class labels keep their ids and ignore 11; the 32-class colours become ids 0..30 in file order
with Void ignored (255). The original release has no splits: a seeded split is made.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from omniseg.data.formats.paired import PairedItem, PairedSource, colours_to_ids, seeded_split
from omniseg.data.imageio import list_image_files, pack_rgb
from omniseg.data.sample import DEFAULT_IGNORE_INDEX, DatasetInfo
from omniseg.errors import DataError

CAMVID11_CLASSES = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
                    "Pedestrian", "Bicyclist"]
CAMVID11_PALETTE = [(128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
                    (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192)]
CAMVID11_IGNORE = 11
ORIGINAL_IMAGE_DIRS = ("701_StillsRaw_full", "images")
ORIGINAL_LABEL_DIRS = ("LabeledApproved_full", "labels")


def _images(directory: Path) -> list[Path]:
    return list_image_files(directory)


def _first_dir(root: Path, names: tuple[str, ...]) -> Path | None:
    return next((root / n for n in names if (root / n).is_dir()), None)


def read_label_colors(path: Path) -> list[tuple[tuple[int, int, int], str]]:
    """``[(colour, name), ...]`` from CamVid's ``label_colors.txt``."""
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            colour = (int(parts[0]), int(parts[1]), int(parts[2]))
            name = " ".join(parts[3:])
        except (ValueError, IndexError):
            raise DataError(f"{path} line {number} is not 'R G B Name': {line!r}") from None
        if not name or not all(0 <= c <= 255 for c in colour):
            raise DataError(f"{path} line {number} is not 'R G B Name' with values 0..255: {line!r}")
        entries.append((colour, name))
    if not entries:
        raise DataError(f"{path} lists no classes")
    return entries


class CamVidSource(PairedSource):
    """CamVid (see the module docstring for both layouts).

    Args:
        root: the dataset folder.
        val_fraction, split_seed: the seeded split of the original (split-less) release.
    """

    name = "camvid"

    @staticmethod
    def detect(root: Path) -> bool:
        segnet = (root / "train").is_dir() and (root / "trainannot").is_dir()
        original = (root / "label_colors.txt").is_file() and _first_dir(root, ORIGINAL_LABEL_DIRS) is not None
        return segnet or original

    def __init__(self, root: str | Path, *, val_fraction: float = 0.2, split_seed: int = 0) -> None:
        self.root = Path(root)
        if (self.root / "label_colors.txt").is_file():
            self._open_original(val_fraction, split_seed)
        elif (self.root / "train").is_dir() and (self.root / "trainannot").is_dir():
            self._open_segnet()
        else:
            raise DataError(f"{self.root} is not a CamVid folder: expected train/ + trainannot/ (SegNet's 11 classes) "
                            "or label_colors.txt + LabeledApproved_full/ (the 32-class release)")
        if not any(self.items.values()):
            raise DataError(f"no CamVid images found under {self.root}")

    def _open_segnet(self) -> None:
        self.colour_lookup = None
        self.info = DatasetInfo(class_names=list(CAMVID11_CLASSES), palette=list(CAMVID11_PALETTE),
                                ignore_index=CAMVID11_IGNORE, things=[2, 6, 8, 9, 10])
        self.items = {}
        for split in ("train", "val", "test"):
            images, labels = self.root / split, self.root / f"{split}annot"
            if not images.is_dir():
                continue
            items = []
            for image in _images(images):
                mask = labels / f"{image.stem}.png"
                if labels.is_dir() and not mask.is_file():
                    raise DataError(f"image {image} has no label {mask}; add it or remove the image")
                items.append(PairedItem(image, mask if labels.is_dir() else None))
            self.items[split] = items
        self.description = "camvid (SegNet layout, 11 classes, 11 = ignore)"

    def _open_original(self, val_fraction: float, split_seed: int) -> None:
        entries = read_label_colors(self.root / "label_colors.txt")
        classes = [(colour, name) for colour, name in entries if name.lower() != "void"]
        self.info = DatasetInfo(class_names=[n for _, n in classes], palette=[c for c, _ in classes],
                                ignore_index=DEFAULT_IGNORE_INDEX)
        self.colour_lookup = {int(pack_rgb(c)): i for i, (c, _) in enumerate(classes)}
        self.colour_lookup.update({int(pack_rgb(c)): DEFAULT_IGNORE_INDEX for c, n in entries if n.lower() == "void"})
        image_dir, label_dir = _first_dir(self.root, ORIGINAL_IMAGE_DIRS), _first_dir(self.root, ORIGINAL_LABEL_DIRS)
        if image_dir is None:
            raise DataError(f"{self.root} has label_colors.txt but no image folder ({' or '.join(ORIGINAL_IMAGE_DIRS)})")
        items = []
        for image in _images(image_dir):
            mask = label_dir / f"{image.stem}_L.png"
            if not mask.is_file():
                raise DataError(f"image {image} has no label {mask}; add it or remove the image")
            items.append(PairedItem(image, mask))
        self.items = seeded_split(items, val_fraction, split_seed) if items else {}
        self.description = f"camvid (original colour-coded release, {self.info.num_classes} classes, seeded split)"

    def decode_mask(self, raw: np.ndarray, mode: str, path: Path) -> np.ndarray:
        if self.colour_lookup is None:
            return super().decode_mask(raw, mode, path)
        if mode != "RGB":
            raise DataError(f"label {path} is not an RGB colour image; the 32-class CamVid labels are colour-coded")
        ids, unknown = colours_to_ids(raw, self.colour_lookup)
        if ids is None:
            raise DataError(f"label {path} holds colour {unknown}, which label_colors.txt does not list; add it there")
        return ids
