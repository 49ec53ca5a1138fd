"""The dataset doctor behind ``omniseg data check``: every problem of a dataset at once, each naming its file.

The readers stop at the first error (training should not start on broken data); the doctor keeps
going. For the folder layout it scans the files itself, so one run lists every corrupt image, missing
or misfit mask, label out of range, 0/255 binary mask, mixed mask kinds, duplicate id, EXIF-rotated
image and empty mask. Other formats are opened by their reader and every Sample is read, each failure
recorded. Errors make the check fail; warnings are listed apart.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from omniseg.data.formats import detect_format, load_dataset
from omniseg.data.formats.folder import CLASSES_FILE, read_classes
from omniseg.data.imageio import IMAGE_SUFFIXES, read_label_png, verify_image
from omniseg.data.sample import DEFAULT_IGNORE_INDEX
from omniseg.errors import DataError


@dataclass
class Finding:
    level: str  # "error" or "warning"
    kind: str  # e.g. "size_mismatch", "label_out_of_range"
    path: str
    message: str


@dataclass
class DoctorReport:
    path: str
    format: str = ""
    description: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    class_names: list[str] = field(default_factory=list)
    class_pixels: dict[str, list[int]] = field(default_factory=dict)  # split -> pixels per class
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    def add(self, level: str, kind: str, path: Path | str, message: str) -> None:
        self.findings.append(Finding(level, kind, str(path), message))

    def to_dict(self) -> dict:
        values = asdict(self)
        values["ok"] = not self.errors
        return values


def exif_rotated(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            return image.getexif().get(0x0112, 1) not in (1, None)
    except (OSError, ValueError):
        return False


def check_dataset(path: str | Path, *, format: str = "auto", **options) -> DoctorReport:
    """Check the dataset at ``path``; never raises for problems of the data (they become findings)."""
    root = Path(path)
    report = DoctorReport(str(root))
    if not root.exists():
        report.add("error", "missing", root, f"{root} does not exist")
        return report
    try:
        name = detect_format(root) if format == "auto" else format
        if name == "folder":
            _check_folder(root, report)
            return report
        source = load_dataset(root, format=name, **options)
    except DataError as exc:
        report.add("error", "unreadable", root, str(exc))
        return report
    except Exception as exc:  # a reader bug must not hide the rest: report it as what it is
        report.add("error", "reader_failure", root, f"the reader failed on {root}: {type(exc).__name__}: {exc}")
        return report
    report.format, report.description = getattr(source, "name", format), source.description
    report.class_names = list(source.info.class_names)
    _check_samples(source, report)
    return report


# -- any format: read every Sample ------------------------------------------------------------------
def _check_samples(source, report: DoctorReport) -> None:
    info, seen = source.info, {}
    for split in source.splits():
        dataset = source.dataset(split)
        report.counts[split] = len(dataset)
        pixels = np.zeros(info.num_classes, np.int64)
        for index in range(len(dataset)):
            image_path = dataset.path(index)
            try:
                sample = dataset[index]
            except DataError as exc:
                report.add("error", "unreadable_sample", image_path, str(exc))
                continue
            except Exception as exc:
                report.add("error", "reader_failure", image_path, f"{type(exc).__name__}: {exc}")
                continue
            sample_path = sample["meta"]["path"]
            stem = sample["meta"]["id"]
            if stem in seen:
                report.add("warning", "duplicate_id", sample_path, f"id {stem!r} also names {seen[stem]}")
            seen[stem] = sample_path
            if Path(sample_path).is_file() and not source.volumetric and exif_rotated(Path(sample_path)):
                report.add("warning", "exif_rotated", sample_path, "has an EXIF orientation; it is read rotated upright, check its mask matches that")
            if "mask" in sample:
                mask = sample["mask"].numpy()
                labelled = mask[(mask != info.ignore_index) & (mask >= 0) & (mask < info.num_classes)]
                pixels += np.bincount(labelled.reshape(-1), minlength=info.num_classes)[: info.num_classes]
                if not len(labelled) or (labelled == 0).all():
                    report.add("warning", "empty_mask", sample_path, "its mask holds no class but 0 (or only ignored pixels)")
        report.class_pixels[split] = pixels.tolist()
    _absent_classes(report)


def _absent_classes(report: DoctorReport) -> None:
    if not report.class_pixels:
        return
    total = np.sum([np.asarray(v) for v in report.class_pixels.values()], axis=0)
    for cls, count in enumerate(total):
        if count == 0 and cls < len(report.class_names):
            report.add("warning", "absent_class", report.path, f"class {cls} ({report.class_names[cls]}) has no pixel in any split")


# -- the folder layout: scan the files themselves ---------------------------------------------------
def _check_folder(root: Path, report: DoctorReport) -> None:
    report.format, report.description = "folder", "images/ + masks/ (scanned file by file)"
    images_dir = root / "images"
    subdirs = sorted(p for p in images_dir.iterdir() if p.is_dir()) if images_dir.is_dir() else []
    splits = {d.name: d for d in subdirs} if subdirs else {"all": images_dir}
    declared = None
    if (root / CLASSES_FILE).is_file():
        try:
            declared = read_classes(root / CLASSES_FILE)
        except DataError as exc:
            report.add("error", "classes_file", root / CLASSES_FILE, str(exc))
        else:
            if declared.void_class is not None:
                name = declared.class_names[declared.void_class]
                report.add("warning", "void_class", root / CLASSES_FILE,
                           f"ignore_index {declared.ignore_index} is class {name!r}: it is void, never trained and in no "
                           f"metric; if {name!r} is a real class, choose another ignore_index")
    scanned, modes, stems_by_split = [], Counter(), {}
    for split, directory in splits.items():
        mask_dir = root / "masks" / split if subdirs else root / "masks"
        files = sorted(p for p in directory.iterdir() if p.is_file())
        stems = Counter(p.stem for p in files if p.suffix.lower() in IMAGE_SUFFIXES)
        stems_by_split[split] = set(stems)
        report.counts[split] = len(stems)
        for stem, count in stems.items():
            if count > 1:
                report.add("error", "duplicate_id", directory / stem, f"{count} images in {split} share the id {stem!r}; one mask cannot serve them all")
        for image in files:
            if image.suffix.lower() not in IMAGE_SUFFIXES:
                report.add("warning", "not_an_image", image, f"{image.name} is not an image file ({', '.join(IMAGE_SUFFIXES)}); it is skipped")
                continue
            scanned.append(_scan_pair(image, mask_dir / f"{image.stem}.png", report, modes))
        if mask_dir.is_dir():
            for mask in sorted(mask_dir.glob("*.png")):
                if mask.stem not in stems:
                    report.add("warning", "orphan_mask", mask, f"has no image in {directory}")
    if not any(report.counts.values()):
        report.add("error", "empty_dataset", images_dir, f"no images under {images_dir}; expected {images_dir}/train/0001.png")
        return
    split_names = list(stems_by_split)
    for i, a in enumerate(split_names):
        for b in split_names[i + 1 :]:
            for stem in sorted(stems_by_split[a] & stems_by_split[b])[:5]:
                report.add("warning", "duplicate_id", root / "images" / b / stem, f"id {stem!r} is in both {a} and {b} (a leak between splits?)")
    if len([m for m in modes if m != "missing"]) > 1:
        report.add("warning", "mixed_mask_kinds", root / "masks", "masks mix kinds: " + ", ".join(f"{n} {m}" for m, n in sorted(modes.items())) +
                   "; one kind (index PNGs) is safest")
    _check_folder_labels(root, scanned, declared, report)


def _scan_pair(image: Path, mask: Path, report: DoctorReport, modes: Counter) -> tuple | None:
    try:
        height, width = verify_image(image)
    except DataError as exc:
        report.add("error", "corrupt_image", image, str(exc))
        return None
    if exif_rotated(image):
        report.add("warning", "exif_rotated", image, "has an EXIF orientation tag: it is read rotated upright; check that its mask is drawn on the rotated image")
    if not mask.is_file():
        modes["missing"] += 1
        report.add("error", "missing_mask", image, f"has no mask {mask}")
        return None
    try:
        array, mode, _ = read_label_png(mask)
    except DataError as exc:
        report.add("error", "corrupt_mask", mask, str(exc))
        return None
    kind = {"RGB": "rgb", "P": "palette"}.get(mode, "index")
    modes[kind] += 1
    if array.shape[:2] != (height, width):
        report.add("error", "size_mismatch", mask, f"is {array.shape[1]}x{array.shape[0]} but its image {image.name} is {width}x{height}")
        return None
    return mask, kind, array


def _check_folder_labels(root: Path, scanned: list, declared, report: DoctorReport) -> None:
    pairs = [p for p in scanned if p is not None]
    index_values = [np.unique(a) for _, kind, a in pairs if kind != "rgb"]
    values = np.unique(np.concatenate(index_values)) if index_values else np.zeros(0, np.int64)
    binary = set(values.tolist()) <= {0, 255} and 255 in values.tolist() and (declared is None or declared.num_classes == 2)
    if binary:
        report.add("warning", "binary_0_255", root / "masks", "masks are 0/255 binary: 255 is read as class 1 (foreground), not as ignore; save them as 0/1")
    if declared is not None:
        names, ignore = declared.class_names, declared.ignore_index
    else:
        labels = values[values != DEFAULT_IGNORE_INDEX]
        names, ignore = [f"class_{i}" for i in range(max(int(labels.max()) + 1 if len(labels) else 1, 2))], DEFAULT_IGNORE_INDEX
    report.class_names = names
    palette = {tuple(c) for c in (declared.palette[: len(names)] if declared is not None else [])}
    pixels = np.zeros(len(names), np.int64)
    for mask, kind, array in pairs:
        if kind == "rgb":
            if declared is None or not (root / CLASSES_FILE).is_file():
                report.add("error", "rgb_without_palette", mask, f"is an RGB colour mask but {CLASSES_FILE} gives no palette to map colours to classes")
                continue
            colours = {tuple(c) for c in np.unique(array.reshape(-1, 3), axis=0).tolist()}
            unknown = sorted(colours - palette)
            if unknown:
                report.add("error", "unknown_colour", mask, f"holds colour {unknown[0]} that the palette of {CLASSES_FILE} lacks")
            continue
        ids = np.where(array == 255, 1, array) if binary else array
        bad = np.unique(ids[(ids >= len(names)) & (ids != ignore) | (ids < 0)])
        if len(bad):
            report.add("error", "label_out_of_range", mask, f"holds label {int(bad[0])} outside the classes 0..{len(names) - 1} (ignore = {ignore})")
            continue
        valid = ids[(ids != ignore) & (ids < len(names))]
        if not len(valid) or (valid == 0).all():
            report.add("warning", "empty_mask", mask, "holds no class but background (or only ignored pixels)")
        pixels += np.bincount(valid.reshape(-1).astype(np.int64), minlength=len(names))[: len(names)]
    report.class_pixels["all"] = pixels.tolist()
    _absent_classes(report)
