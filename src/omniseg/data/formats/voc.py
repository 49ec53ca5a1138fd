"""Pascal VOC segmentation (VOC2012 and exports in its layout, e.g. labelme2voc)::

    DATA/JPEGImages/*.jpg
    DATA/SegmentationClass/*.png              palette PNGs: 0 = background, 1..20 classes, 255 = void (ignored)
    DATA/SegmentationObject/*.png             optional instance ids 1..N (255 = void), read as instances
    DATA/ImageSets/Segmentation/{train,val,trainval,test}.txt   optional image ids per split
    DATA/class_names.txt                      optional, one name a line (labelme2voc writes it)

Also found one level down: ``VOCdevkit/VOC2012/`` as the official archive unpacks. Only images with a
``SegmentationClass`` PNG take part (VOC has many detection-only images); without ImageSets a seeded
split is made.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from omniseg.data.formats.paired import UNSPLIT, PairedItem, PairedSource, colours_to_ids, seeded_split
from omniseg.data.formats.records import records, write_image
from omniseg.data.imageio import list_image_files, pack_rgb, write_index_png
from omniseg.data.sample import DEFAULT_IGNORE_INDEX, DatasetInfo
from omniseg.errors import DataError

VOC_CLASSES = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"]


def voc_palette(count: int = 256) -> list[tuple[int, int, int]]:
    """The VOC colour map: the bits of the class id spread over R, G and B, most significant first.

    Example:
        >>> voc_palette(3)
        [(0, 0, 0), (128, 0, 0), (0, 128, 0)]
    """
    colours = []
    for index in range(count):
        r = g = b = 0
        value = index
        for shift in range(7, -1, -1):
            r |= ((value >> 0) & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        colours.append((r, g, b))
    return colours


VOC_COLOUR_IDS = {int(pack_rgb(colour)): index for index, colour in enumerate(voc_palette(256))}


def _voc_root(root: Path) -> Path:
    for candidate in (root, root / "VOCdevkit" / "VOC2012", root / "VOC2012"):
        if (candidate / "SegmentationClass").is_dir() and (candidate / "JPEGImages").is_dir():
            return candidate
    return root


class VOCSource(PairedSource):
    """Pascal VOC semantic segmentation (see the module docstring).

    Args:
        root: the VOC folder (or the folder holding ``VOCdevkit/VOC2012``).
        val_fraction, split_seed: the seeded split when there is no ``ImageSets/Segmentation``.
    """

    name = "voc"

    @staticmethod
    def detect(root: Path) -> bool:
        voc = _voc_root(root)
        return (voc / "SegmentationClass").is_dir() and (voc / "JPEGImages").is_dir()

    def __init__(self, root: str | Path, *, val_fraction: float = 0.2, split_seed: int = 0) -> None:
        self.root = _voc_root(Path(root))
        if not self.detect(self.root):
            raise DataError(f"{root} is not a Pascal VOC folder: expected JPEGImages/ and SegmentationClass/")
        names_file = self.root / "class_names.txt"
        names = [n.strip() for n in names_file.read_text().splitlines() if n.strip()] if names_file.is_file() else VOC_CLASSES
        names = ["background" if n == "_background_" else n for n in names]
        if len(names) > 255:
            raise DataError(f"{names_file} lists {len(names)} classes; VOC masks hold at most 255 (255 = void)")
        self.info = DatasetInfo(class_names=names, palette=voc_palette(len(names)), ignore_index=DEFAULT_IGNORE_INDEX,
                                things=list(range(1, len(names))))
        images = {p.stem: p for p in list_image_files(self.root / "JPEGImages", (".jpg", ".jpeg", ".png"))}
        masks = {p.stem: p for p in (self.root / "SegmentationClass").glob("*.png")}
        orphans = sorted(set(masks) - set(images))
        if orphans:
            raise DataError(f"mask {masks[orphans[0]]} has no image in {self.root / 'JPEGImages'}; add it or remove the mask")
        sets = self.root / "ImageSets" / "Segmentation"
        split_files = {p.stem: p for p in sets.glob("*.txt")} if sets.is_dir() else {}
        if split_files:
            self.items = {}
            for split, path in sorted(split_files.items()):
                ids = [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
                missing = [i for i in ids if i not in images]
                if missing:
                    raise DataError(f"{path} lists image {missing[0]!r}, which is not in {self.root / 'JPEGImages'}")
                self.items[split] = [PairedItem(images[i], masks.get(i)) for i in ids]
                unlabelled = [i for i in ids if i not in masks]
                if unlabelled and len(unlabelled) < len(ids):
                    raise DataError(f"{path} lists {unlabelled[0]!r}, which has no SegmentationClass PNG")
            how = "ImageSets splits"
        else:
            self.items = seeded_split([PairedItem(images[s], m) for s, m in sorted(masks.items())], val_fraction, split_seed) if masks else {}
            how = "seeded split"
        if not any(self.items.values()):
            raise DataError(f"no labelled images under {self.root} (SegmentationClass/ is empty)")
        for item in (i for items in self.items.values() for i in items):
            objects = self.root / "SegmentationObject" / f"{item.image.stem}.png"
            item.instances = objects if objects.is_file() and item.mask is not None else None
        self.description = f"voc ({len(names)} classes, 255 = void, {how})"

    def decode_mask(self, raw: np.ndarray, mode: str, path: Path) -> np.ndarray:
        if mode == "RGB":  # VOC-coloured RGB masks (re-saved without the palette): map the colours back
            ids, _ = colours_to_ids(raw, VOC_COLOUR_IDS)
            if ids is None:
                raise DataError(f"mask {path} holds colours outside the VOC palette; save it as a palette PNG")
            return ids
        return raw.astype(np.int64)


def write_voc(source, out: str | Path) -> Path:
    """Write any 2D DataSource in the Pascal VOC layout: JPEGImages/, SegmentationClass/ (VOC palette,
    255 = void), SegmentationObject/ where there are instances, ImageSets/Segmentation/<split>.txt and
    class_names.txt (data without splits gets no ImageSets: VOC's reader splits it)."""
    out, info = Path(out), source.info
    if info.num_classes > 255:
        raise DataError(f"{source.root} has {info.num_classes} classes; VOC palette masks hold at most 255 (255 = void)")
    palette = voc_palette(256)
    splits: dict[str, list[str]] = {}
    for record in records(source, "writing voc"):
        write_image(record, out / "JPEGImages", (".jpg", ".jpeg", ".png"))
        splits.setdefault(record.split, []).append(record.stem)
        sample = record.sample
        if "mask" not in sample:
            continue
        semantic = sample["mask"].numpy()
        void = (semantic < 0) | (semantic >= info.num_classes)
        (out / "SegmentationClass").mkdir(parents=True, exist_ok=True)
        write_index_png(out / "SegmentationClass" / f"{record.stem}.png", np.where(void, 255, semantic), palette)
        instances = sample.get("instances", {}).get("masks")
        if instances is not None and len(instances):
            if len(instances) > 254:
                raise DataError(f"{sample['meta']['path']} has {len(instances)} instances; VOC object PNGs hold at most 254")
            ids = np.zeros(record.size, np.uint8)
            for number, mask in enumerate(instances.numpy(), 1):
                ids[mask] = number
            ids[void] = 255
            (out / "SegmentationObject").mkdir(parents=True, exist_ok=True)
            write_index_png(out / "SegmentationObject" / f"{record.stem}.png", ids, palette)
    if set(splits) != {UNSPLIT}:
        (out / "ImageSets" / "Segmentation").mkdir(parents=True, exist_ok=True)
    for split, stems in splits.items():
        if split != UNSPLIT:
            (out / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("".join(f"{s}\n" for s in stems))
    (out / "class_names.txt").write_text("".join(f"{n}\n" for n in info.class_names))
    return out
