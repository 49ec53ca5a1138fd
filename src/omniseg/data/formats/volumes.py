"""Loose volume pairs: a folder of NIfTI or NRRD images, each beside its label volume (extra ``medical``)::

    DATA/brain1_image.nrrd     DATA/brain1_label.nrrd          (``X_image`` + ``X_label``)
    DATA/case.nii              DATA/case_label.nii.gz          (``X`` + ``X_label``, ``X-label``, ``X_seg``, ``X_mask``)
    DATA/classes.json          optional: {"class_names": [...]} for label values 0..K-1

Opening reads the headers; without classes.json also the label volumes, once: the classes are the values found: value 0 is
``background`` and the others ``label_V``, renumbered 0..K-1 in value order. The split is seeded.
Arrays come out as in the NIfTI reader: ``image [C, D, H, W]`` with ``D, H, W`` the file's ``z, y, x``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from omniseg.data.formats.nifti import NIFTI_SUFFIXES, NiftiSource, VolumeCase, read_nifti
from omniseg.data.formats.paired import seeded_split
from omniseg.data.sample import DEFAULT_IGNORE_INDEX, DatasetInfo
from omniseg.errors import DataError

VOLUME_SUFFIXES = (*NIFTI_SUFFIXES, ".nrrd", ".nhdr")
LABEL_PATTERN = re.compile(r"(.+?)[_-](label|labels|seg|segmentation|mask)$", re.IGNORECASE)


def volume_stem(path: Path) -> str:
    return path.name[: -len(next(s for s in VOLUME_SUFFIXES if path.name.endswith(s)))]


def read_nrrd(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(volume float32 [C, D, H, W], affine [4, 4] in RAS)`` of an NRRD file."""
    try:
        import nrrd
    except ImportError:
        raise DataError("NRRD volumes need pynrrd: pip install 'omniseg[medical]'") from None
    try:
        data, header = nrrd.read(str(path))
    except Exception as exc:
        raise DataError(f"cannot read NRRD volume {path} ({exc}); check the file") from None
    kinds = header.get("kinds") or ["domain"] * data.ndim
    if data.ndim == 4 and kinds[0] not in ("domain", "space"):  # a channel axis first, as Slicer writes it
        data = np.moveaxis(data, 0, -1)
    if data.ndim not in (3, 4):
        raise DataError(f"{path} has {data.ndim} axes; expected a 3D volume (or 4D with one channel axis)")
    data = data[..., None] if data.ndim == 3 else data
    affine = np.eye(4)
    directions = header.get("space directions")
    if directions is not None:
        rows = [np.asarray(d, float) for d in directions if d is not None and not np.isnan(np.asarray(d, float)).any()]
        if len(rows) == 3:
            affine[:3, :3] = np.stack(rows, axis=1)
    if header.get("space origin") is not None:
        affine[:3, 3] = np.asarray(header["space origin"], float)
    if str(header.get("space", "")).lower() in ("left-posterior-superior", "lps"):
        affine[:2] *= -1  # LPS -> RAS, the convention of NIfTI affines
    return np.ascontiguousarray(data.astype(np.float32).transpose(3, 2, 1, 0)), affine


def volume_shape(path: Path) -> tuple[int, tuple[int, int, int]]:
    """``(channels, (D, H, W))`` of a volume from its header alone."""
    try:
        if path.name.endswith((".nrrd", ".nhdr")):
            import nrrd

            header = nrrd.read_header(str(path))
            sizes, kinds = list(header["sizes"]), header.get("kinds") or ["domain"] * len(header["sizes"])
            channels = sizes.pop(0) if len(sizes) == 4 and kinds[0] not in ("domain", "space") else (sizes.pop() if len(sizes) == 4 else 1)
        else:
            import nibabel

            sizes = list(nibabel.load(path).shape)
            channels = sizes.pop() if len(sizes) == 4 else 1
    except ImportError:
        raise DataError("NIfTI and NRRD volumes need the medical extra: pip install 'omniseg[medical]'") from None
    except Exception as exc:
        raise DataError(f"cannot read the header of volume {path} ({exc}); check the file") from None
    if len(sizes) != 3:
        raise DataError(f"{path} has {len(sizes)} spatial axes; expected a 3D volume")
    return int(channels), tuple(int(v) for v in sizes[::-1])


def read_volume(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A NIfTI or NRRD volume as ``(float32 [C, D, H, W], affine)``."""
    path = Path(path)
    return read_nrrd(path) if path.name.endswith((".nrrd", ".nhdr")) else read_nifti(path)


def find_pairs(root: Path) -> list[tuple[str, Path, Path]]:
    """``(case, image, label)`` for every volume in ``root`` with a label partner."""
    if not root.is_dir():
        return []
    files = {volume_stem(p): p for p in sorted(root.iterdir()) if p.is_file() and p.name.endswith(VOLUME_SUFFIXES)}
    pairs = []
    for stem, label in files.items():
        match = LABEL_PATTERN.fullmatch(stem)
        if not match:
            continue
        base = match.group(1)
        image = next((files[c] for c in (base, f"{base}_image", f"{base}-image", f"{base}_img") if c in files), None)
        if image is not None:
            pairs.append((base, image, label))
    return pairs


class VolumePairsSource(NiftiSource):
    """Image + label volume pairs in one folder (see the module docstring)."""

    name = "volumes"

    @staticmethod
    def detect(root: Path) -> bool:
        return bool(find_pairs(root))

    def __init__(self, root: str | Path, *, val_fraction: float = 0.2, split_seed: int = 0) -> None:
        self.root = Path(root)
        pairs = find_pairs(self.root)
        if not pairs:
            raise DataError(f"{self.root} has no image + label volume pairs (e.g. case.nii.gz + case_label.nii.gz, or X_image.nrrd + X_label.nrrd)")
        classes_path = self.root / "classes.json"
        cases, values, channels = [], set(), set()
        for case, image, label in pairs:  # headers only, and the labels when their values name the classes
            image_channels, shape = volume_shape(image)
            label_channels, label_shape = volume_shape(label)
            if label_shape != shape or label_channels != 1:
                raise DataError(f"label {label} is {label_shape} (z, y, x) with {label_channels} channel(s) but its image "
                                f"{image} is {shape}; labels must be one channel on the image's grid")
            if not classes_path.is_file():
                values |= set(np.unique(self._raw_label(label)).tolist())
            channels.add(image_channels)
            cases.append(VolumeCase(case, [image], label, shape))
        if len(channels) > 1:
            raise DataError(f"the images in {self.root} differ in channel count ({sorted(channels)}); one model needs one count")
        self.num_channels = channels.pop()
        if classes_path.is_file():
            try:
                names = json.loads(classes_path.read_text())["class_names"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DataError(f"{classes_path} must hold {{\"class_names\": [...]}} ({exc})") from None
            self.values = list(range(len(names)))
        else:
            self.values = sorted(int(v) for v in values)
            names = ["background" if v == 0 else f"label_{v}" for v in self.values]
        self.lookup = {v: i for i, v in enumerate(self.values)}
        self.table = np.zeros(max(self.values) + 1, np.int64)  # label value -> class id
        self.table[self.values] = np.arange(len(self.values))
        self.info = DatasetInfo(names, ignore_index=DEFAULT_IGNORE_INDEX)
        self._cases = seeded_split(cases, val_fraction, split_seed)
        self.description = f"volume pairs ({len(cases)} cases, label values {self.values})"

    @staticmethod
    def _raw_label(path: Path) -> np.ndarray:
        volume, _ = read_volume(path)
        if volume.shape[0] != 1:
            raise DataError(f"label {path} has {volume.shape[0]} channels; a label volume has one")
        labels = volume[0]
        if not np.array_equal(labels, np.rint(labels)) or labels.min() < 0:
            raise DataError(f"label {path} holds non-integer or negative values; labels must be class ids")
        return labels.astype(np.int64)

    def read_case(self, case: VolumeCase) -> tuple[np.ndarray, np.ndarray]:
        image, affine = read_volume(case.images[0])
        if not np.isfinite(image).all():
            raise DataError(f"image {case.images[0]} holds NaN or infinite values; clean the volume first")
        return image, affine

    def read_label(self, case: VolumeCase) -> np.ndarray:
        labels = self._raw_label(case.label)
        unknown = sorted(set(np.unique(labels).tolist()) - set(self.lookup))
        if unknown:
            raise DataError(f"label {case.label} holds values {unknown[:5]} outside the classes {self.values}; fix the labels or classes.json")
        return self.table[labels]
