"""The plain folder format: ``DATA/images/<split>/*`` and ``DATA/masks/<split>/*.png`` matched by stem.

Layout::

    DATA/images/train/a.jpg      DATA/masks/train/a.png
    DATA/images/val/b.jpg        DATA/masks/val/b.png
    DATA/instances/train/a.png   optional: instance ids (16-bit PNG, 0 = none; class = the mask's class under it);
                                 a.1.png, a.2.png, ... hold instances that overlap those of a.png
    DATA/classes.json            optional: {"class_names": [...], "palette": [[r,g,b],...], "ignore_index": 255}

Without split folders (``DATA/images/*``), a seeded split is made; its seed and fraction are in the
run's config. Masks may be class-index PNGs, palette PNGs, RGB colour masks (mapped through the
palette of classes.json) or 0/255 binary masks (read as 0/1, with a warning).
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from omniseg.data.formats.base import override_ignore_index, read_json, reading
from omniseg.data.formats.paired import UNSPLIT, PairedDataset, read_instance_pngs, seeded_split
from omniseg.data.formats.records import records, write_image
from omniseg.data.imageio import IMAGE_SUFFIXES, list_image_files, pack_rgb, read_label_png, verify_image, write_index_png
from omniseg.data.sample import DEFAULT_IGNORE_INDEX, DatasetInfo
from omniseg.errors import DataError

log = logging.getLogger(__name__)

CLASSES_FILE = "classes.json"


@dataclass
class _Item:
    image: Path
    mask: Path | None
    instances: Path | None = None  # instances/<split>/<stem>.png: instance ids (0 = none)
    values: np.ndarray | None = None  # distinct raw mask values (ints, or packed RGB for colour masks)
    counts: np.ndarray | None = None
    mode: str = ""


def _list_images(directory: Path) -> list[Path]:
    return list_image_files(directory)


def read_classes(path: Path) -> DatasetInfo:
    values = read_json(path)
    if isinstance(values, list):  # a bare list of names
        values = {"class_names": values}
    if not isinstance(values, dict):
        raise DataError(f"{path} must hold an object with 'class_names', got {type(values).__name__}")
    names = values.get("class_names", values.get("names"))
    if not isinstance(names, list) or not names:
        raise DataError(f"{path} needs a non-empty list 'class_names', e.g. {{\"class_names\": [\"background\", \"cat\"]}}")
    palette = values.get("palette", [])
    if not isinstance(palette, list) or any(
        not isinstance(c, (list, tuple)) or len(c) != 3 or not all(isinstance(v, int) and 0 <= v <= 255 for v in c)
        for c in palette
    ):
        raise DataError(f"{path}: 'palette' must be a list of [r, g, b] triples of integers 0..255")
    with reading(path):
        return DatasetInfo(
            class_names=names,
            palette=[tuple(c) for c in palette],
            ignore_index=int(values.get("ignore_index", DEFAULT_IGNORE_INDEX)),
            things=list(values.get("things", [])),
        )


class FolderSource:
    """An image/mask folder dataset (see the module docstring for the layout).

    Args:
        root: the dataset folder.
        val_fraction: share of images put in ``val`` when the folder has no split subfolders.
        split_seed: seed of that split.

    Example:
        >>> source = FolderSource("data/shapes")  # doctest: +SKIP
        >>> sample = source.dataset("train")[0]  # doctest: +SKIP
    """

    name = "folder"
    volumetric = False

    @staticmethod
    def detect(root: Path) -> bool:
        return (root / "images").is_dir()

    def __init__(self, root: str | Path, *, val_fraction: float = 0.2, split_seed: int = 0, ignore_index: int | None = None) -> None:
        self.root = Path(root)
        self._png_palette: list[tuple[int, int, int]] | None = None  # palette of the first palette mask
        if not self.root.is_dir():
            raise DataError(f"dataset folder {self.root} does not exist; check --data")
        images_dir = self.root / "images"
        if not images_dir.is_dir():
            raise DataError(f"{self.root} has no images/ folder; expected {self.root}/images/<split>/*.png")
        self._items = self._index(images_dir, val_fraction, split_seed)
        classes_path = self.root / CLASSES_FILE
        declared = read_classes(classes_path) if classes_path.is_file() else None
        self._scan_masks()
        self.binary = self._detect_binary(declared)
        self.info = declared or self._infer_info()
        if ignore_index is not None:  # the caller's void value wins over classes.json's (labels are checked with it)
            self.info = override_ignore_index(self.info, ignore_index, self.root / CLASSES_FILE)
        self._check_labels()
        mask_kind = "0/255 binary" if self.binary else "/".join(sorted({i.mode for v in self._items.values() for i in v if i.mask}))
        self.description = f"folder ({mask_kind or 'no'} masks{', seeded split' if self.seeded_split else ''})"

    # -- indexing -------------------------------------------------------------------------------
    def _index(self, images_dir: Path, val_fraction: float, split_seed: int) -> dict[str, list[_Item]]:
        subdirs = sorted(p for p in images_dir.iterdir() if p.is_dir() and not p.name.lower().endswith(IMAGE_SUFFIXES))
        loose = _list_images(images_dir)
        if subdirs and loose:
            raise DataError(f"{images_dir} holds both images ({loose[0].name}, ...) and split folders ({subdirs[0].name}, ...); "
                            "put every image in a split folder, or remove the folders")
        self.seeded_split = not subdirs
        if subdirs:
            images = {d.name: _list_images(d) for d in subdirs}
        else:
            images = seeded_split(loose, val_fraction, split_seed)
        if not any(images.values()):
            raise DataError(f"no images found under {images_dir}; expected files like {images_dir}/train/0001.png")
        items = {}
        for split, files in images.items():
            mask_dir = self.root / "masks" / split if subdirs else self.root / "masks"
            instance_dir = self.root / "instances" / split if subdirs else self.root / "instances"
            items[split] = [_Item(f, mask_dir / f"{f.stem}.png", (instance_dir / f"{f.stem}.png") if (instance_dir / f"{f.stem}.png").is_file() else None)
                            for f in files]
            found = [i for i in items[split] if i.mask.is_file()]
            if found and len(found) < len(items[split]):
                missing = next(i for i in items[split] if not i.mask.is_file())
                raise DataError(
                    f"image {missing.image} has no mask {missing.mask}; add the mask or move the image out of {split}"
                )
            if not found:
                for i in items[split]:
                    i.mask = None
        return items

    def _scan_masks(self) -> None:
        for items in self._items.values():
            for item in items:
                if item.mask is None:
                    continue
                height, width = verify_image(item.image)
                array, mode, palette = read_label_png(item.mask)
                if array.shape[:2] != (height, width):
                    raise DataError(
                        f"mask {item.mask} is {array.shape[1]}x{array.shape[0]} but its image {item.image} is "
                        f"{width}x{height}; resize the mask with nearest-neighbour interpolation or fix the pair"
                    )
                raw = pack_rgb(array) if mode == "RGB" else array
                item.values, item.counts = np.unique(raw, return_counts=True)
                item.mode = "rgb" if mode == "RGB" else ("palette" if mode == "P" else "index")
                if palette is not None and self._png_palette is None:
                    self._png_palette = palette

    def _labelled(self) -> list[_Item]:
        return [i for items in self._items.values() for i in items if i.mask is not None]

    def _detect_binary(self, declared: DatasetInfo | None) -> bool:
        index_items = [i for i in self._labelled() if i.mode != "rgb"]
        if not index_items or (declared is not None and declared.num_classes != 2):
            return False
        values = np.unique(np.concatenate([i.values for i in index_items]))
        if set(values.tolist()) <= {0, 255} and 255 in values:
            warnings.warn(
                f"masks under {self.root / 'masks'} are 0/255 binary; reading 255 as class 1. "
                "Save them as 0/1 to silence this warning.",
                stacklevel=3,
            )
            return True
        return False

    def _infer_info(self) -> DatasetInfo:
        labelled = self._labelled()
        if self.binary:
            return DatasetInfo(class_names=["background", "foreground"], ignore_index=DEFAULT_IGNORE_INDEX)
        if not labelled:
            raise DataError(f"{self.root} has no masks and no {CLASSES_FILE}; add masks/<split>/*.png")
        rgb = next((i for i in labelled if i.mode == "rgb"), None)
        if rgb is not None:
            raise DataError(
                f"mask {rgb.mask} is an RGB colour mask; add {self.root / CLASSES_FILE} with a 'palette' "
                "that maps each colour to its class"
            )
        values = np.unique(np.concatenate([i.values for i in labelled]))
        values = values[values != DEFAULT_IGNORE_INDEX]
        num_classes = int(values.max()) + 1 if len(values) else 1
        num_classes = max(num_classes, 2)
        palette = self._png_palette
        log.info("no %s in %s: %d classes inferred from the masks", CLASSES_FILE, self.root, num_classes)
        return DatasetInfo(
            class_names=[f"class_{i}" for i in range(num_classes)],
            palette=palette[:num_classes] if palette else [],
            ignore_index=DEFAULT_IGNORE_INDEX,
        )

    def _check_labels(self) -> None:
        num_classes, ignore = self.info.num_classes, self.info.ignore_index
        colour_to_class = {pack_rgb(np.array(c)).item(): k for k, c in enumerate(self.info.palette[:num_classes])}
        self._colour_keys = np.array(sorted(colour_to_class), dtype=np.int64)
        self._colour_classes = np.array([colour_to_class[k] for k in self._colour_keys], dtype=np.int64)
        for item in self._labelled():
            if item.mode == "rgb":
                unknown = [int(v) for v in item.values if int(v) not in colour_to_class]
                if unknown:
                    v = unknown[0]
                    raise DataError(
                        f"mask {item.mask} has colour {(v >> 16, (v >> 8) & 255, v & 255)} that is not in the palette "
                        f"of {self.root / CLASSES_FILE}; add it to the palette or repaint those pixels"
                    )
                continue
            values = item.values
            if self.binary:
                continue
            bad = values[(values >= num_classes) & (values != ignore) | (values < 0)]
            if len(bad):
                raise DataError(
                    f"mask {item.mask} has label {int(bad[0])} but the dataset has {num_classes} classes "
                    f"(0..{num_classes - 1}, {ignore} = ignore); fix the mask or list the class in {CLASSES_FILE}"
                )

    # -- the DataSource interface ---------------------------------------------------------------
    def splits(self) -> list[str]:
        return [s for s, items in self._items.items() if items]

    def dataset(self, split: str) -> PairedDataset:
        if split not in self._items:
            raise DataError(
                f"{self.root} has no split {split!r}; found {', '.join(self._items) or 'none'} under images/"
            )
        if not self._items[split]:
            raise DataError(f"split {split!r} of {self.root} is empty; put images in {self.root}/images/{split}/")
        return PairedDataset(self, self._items[split])

    def labelled(self, split: str) -> bool:
        return all(item.mask is not None for item in self._items.get(split, []))

    def class_pixel_stats(self, split: str) -> tuple[np.ndarray, np.ndarray] | None:
        num_classes = self.info.num_classes
        pixels = np.zeros(num_classes, np.int64)
        image_pixels = np.zeros(num_classes, np.int64)
        for item in self._items.get(split, []):
            if item.mask is None:
                return None
            labels = self._decode_values(item.mode, item.values)
            keep = (labels >= 0) & (labels < num_classes)
            per_class = np.bincount(labels[keep], weights=item.counts[keep], minlength=num_classes).astype(np.int64)
            pixels += per_class
            image_pixels[per_class > 0] += int(item.counts.sum())
        return pixels, image_pixels

    def _decode_values(self, mode: str, raw: np.ndarray) -> np.ndarray:
        if mode == "rgb":
            return self._colour_classes[np.searchsorted(self._colour_keys, raw)]
        if self.binary:
            return np.where(raw == 255, 1, raw)
        return raw

    def read_instances(self, item: _Item, semantic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return read_instance_pngs(item.instances, semantic, self.info.ignore_index)

    def read_mask(self, path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
        """Class ids of the mask at ``path`` (its size and labels were checked when the folder was opened)."""
        array, mode, _ = read_label_png(path)
        raw = pack_rgb(array) if mode == "RGB" else array.astype(np.int64)
        return self._decode_values("rgb" if mode == "RGB" else "index", raw)


def instance_layers(masks: np.ndarray) -> list[np.ndarray]:
    """Instance ids 1..N as uint16 maps; an instance that overlaps one already placed goes to the next
    layer, so overlapping instances keep every pixel."""
    layers: list[np.ndarray] = []
    for number, mask in enumerate(masks, 1):
        layer = next((layer for layer in layers if not layer[mask].any()), None)
        if layer is None:
            layer = np.zeros(mask.shape, np.uint16)
            layers.append(layer)
        layer[mask] = number
    return layers


def write_folder(source, out: str | Path) -> Path:
    """Write any 2D DataSource in the folder layout: images, class-id masks (palette PNGs, 16-bit when
    ids pass 255), instance ids (16-bit PNGs) where the source has instances, and classes.json."""
    out, info = Path(out), source.info
    for record in records(source, "writing folder"):
        split = "" if record.split == UNSPLIT else record.split  # data without splits keeps the flat layout
        write_image(record, out / "images" / split)
        sample = record.sample
        if "mask" in sample:
            semantic = sample["mask"].numpy()
            (out / "masks" / split).mkdir(parents=True, exist_ok=True)
            if semantic.max(initial=0) <= 255:
                write_index_png(out / "masks" / split / f"{record.stem}.png", semantic, info.palette)
            else:
                Image.fromarray(semantic.astype(np.uint16)).save(out / "masks" / split / f"{record.stem}.png")
        if len(sample.get("instances", {}).get("labels", [])):
            (out / "instances" / split).mkdir(parents=True, exist_ok=True)
            for number, layer in enumerate(instance_layers(sample["instances"]["masks"].numpy())):
                name = f"{record.stem}.png" if number == 0 else f"{record.stem}.{number}.png"
                Image.fromarray(layer).save(out / "instances" / split / name)
    (out / CLASSES_FILE).write_text(json.dumps(info.to_dict(), indent=1))
    return out
