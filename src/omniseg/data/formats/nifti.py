"""NIfTI volumes in the Medical Segmentation Decathlon / nnU-Net layout (needs the ``medical`` extra).

    dataset.json                   labels {"0": "background", "1": "tumour"} (Decathlon) or
                                   {"background": 0, "tumour": 1} (nnU-Net v2)
    imagesTr/case_001.nii.gz       one file per case, channels on a 4th axis (Decathlon), or
    imagesTr/case_001_0000.nii.gz  one file per channel (nnU-Net v2, ``channel_names``)
    labelsTr/case_001.nii.gz       integer labels, same grid as the image
    imagesTs/                      unlabelled cases (split "test")

Volumes are read when a Sample is asked for; opening the dataset reads only the NIfTI headers.
Arrays come out as ``image [C, D, H, W]`` float32 and ``mask [D, H, W]`` int64, with ``D, H, W`` the
file's ``z, y, x`` axes. Without a ``splits.json`` (``{"train": [...], "val": [...]}`` of case ids),
a seeded ``val_fraction`` of the training cases is held out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision import tv_tensors

from omniseg.data.formats.base import read_json, reading
from omniseg.data.formats.paired import class_pixel_totals, seeded_split
from omniseg.data.sample import DEFAULT_IGNORE_INDEX, DatasetInfo, Sample
from omniseg.errors import DataError

NIFTI_SUFFIXES = (".nii.gz", ".nii")


def _nibabel():
    try:
        import nibabel
    except ImportError:
        raise DataError("NIfTI volumes need nibabel: pip install 'omniseg[medical]'") from None
    return nibabel


def case_id(path: Path) -> str:
    """The file name without its NIfTI suffix: ``case_001.nii.gz`` -> ``case_001``."""
    return path.name[: -len(next(s for s in NIFTI_SUFFIXES if path.name.endswith(s)))]


def _nifti_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.name.endswith(NIFTI_SUFFIXES) and not p.name.startswith("."))


def _load(path: Path):
    """The nibabel image of a NIfTI file (its header read, its voxels not yet), checked to be 3D or 4D."""
    try:
        image = _nibabel().load(path)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"cannot read NIfTI volume {path} ({exc}); check the file") from None
    if len(image.shape) not in (3, 4):
        raise DataError(f"{path} has {len(image.shape)} axes; expected a 3D volume, or 4D with channels last")
    return image


def _read_voxels(image, path: Path, z: slice = slice(None)) -> np.ndarray:
    """The file's slices ``z`` as ``[C, depth, H, W]`` float32 (``D, H, W`` = the file's ``z, y, x``)."""
    try:
        data = np.asarray(image.dataobj[:, :, z], dtype=np.float32)
    except Exception as exc:
        raise DataError(f"cannot read NIfTI volume {path} ({exc}); the file may be truncated: check it") from None
    data = data[..., None] if data.ndim == 3 else data
    return np.ascontiguousarray(data.transpose(3, 2, 1, 0))


def read_nifti(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(volume float32 [C, D, H, W], affine [4, 4])`` of a NIfTI file (``D, H, W`` = its ``z, y, x``)."""
    path = Path(path)
    image = _load(path)
    return _read_voxels(image, path), image.affine


class NiftiSlabs:
    """A NIfTI volume read slab by slab: ``slabs(start, stop)`` -> ``[C, stop - start, H, W]`` (float32, D/H/W
    = the file's z/y/x, as :func:`read_nifti`), z-scored per channel with the whole volume's mean and standard
    deviation (as :class:`~omniseg.data.transforms.VolumeTransform`), which a first pass over slabs of
    ``slab_depth`` computes when the first slab is asked for. Only the asked slices are read from an uncompressed
    file (a ``.nii.gz`` is decompressed as far as they lie)."""

    def __init__(self, path: str | Path, *, slab_depth: int = 16) -> None:
        self.path, self.slab_depth = Path(path), slab_depth
        self._image = _load(self.path)
        self.affine, shape = self._image.affine, tuple(self._image.shape)
        self.channels = shape[3] if len(shape) == 4 else 1
        self.shape = (shape[2], shape[1], shape[0])  # D, H, W
        self._statistics: tuple[np.ndarray, np.ndarray] | None = None

    def statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """The per-channel mean and (unbiased, as ``torch.std``) standard deviation of the whole volume."""
        if self._statistics is None:
            count, total, squares = 0, np.zeros(self.channels), np.zeros(self.channels)
            for start in range(0, self.shape[0], self.slab_depth):
                raw = self.raw(start, start + self.slab_depth).astype(np.float64)
                count += raw[0].size
                total += raw.sum(axis=(1, 2, 3))
                squares += (raw ** 2).sum(axis=(1, 2, 3))
            mean = total / count
            variance = (squares - count * mean ** 2) / max(count - 1, 1)
            self._statistics = mean, np.maximum(np.sqrt(np.maximum(variance, 0)), 1e-6)
        return self._statistics

    def raw(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """The file's slices ``start:stop`` along z (all of them by default) as ``[C, stop - start, H, W]``
        float32, unnormalised."""
        return _read_voxels(self._image, self.path, slice(start, stop))

    def __call__(self, start: int, stop: int) -> torch.Tensor:
        mean, std = self.statistics()
        return torch.from_numpy((self.raw(start, stop) - mean[:, None, None, None]) / std[:, None, None, None]).float()


def voxel_spacing(affine: np.ndarray) -> tuple[float, float, float]:
    """The voxel size ``(D, H, W)`` (the file's z, y, x) of a volume with ``affine``: its columns' lengths."""
    x, y, z = np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)
    return float(z), float(y), float(x)


def write_nifti_labels(path: str | Path, labels: np.ndarray, affine: np.ndarray) -> Path:
    """Write class ids ``[D, H, W]`` as a uint8/uint16 NIfTI on the grid of ``affine``."""
    nib = _nibabel()
    dtype = np.uint8 if labels.max(initial=0) < 256 else np.uint16
    path = Path(path)
    nib.save(nib.Nifti1Image(np.ascontiguousarray(labels.transpose(2, 1, 0)).astype(dtype), affine), path)
    return path


@dataclass
class VolumeCase:
    id: str
    images: list[Path]  # one file (channels on axis 4) or one per channel
    label: Path | None
    shape: tuple[int, int, int]  # (D, H, W)


def _read_labels(manifest: dict, path: Path) -> list[str]:
    labels = manifest.get("labels")
    if not isinstance(labels, dict) or not labels:
        raise DataError(f"{path} has no 'labels' mapping; add e.g. \"labels\": {{\"0\": \"background\", \"1\": \"organ\"}}")
    try:
        if all(str(k).isdigit() for k in labels):  # Decathlon: id -> name
            by_id = {int(k): str(v) for k, v in labels.items()}
        else:  # nnU-Net v2: name -> id (region-based lists are not supported)
            by_id = {int(v): str(k) for k, v in labels.items()}
    except (TypeError, ValueError):
        raise DataError(f"{path}: 'labels' must map ids to names or names to integer ids, got {labels}") from None
    if sorted(by_id) != list(range(len(by_id))):
        raise DataError(f"{path}: label ids must be 0..K-1 without gaps, got {sorted(by_id)}")
    return [by_id[i] for i in range(len(by_id))]


class NiftiSource:
    """A Decathlon / nnU-Net style NIfTI dataset (see the module docstring).

    Args:
        root: the folder holding ``dataset.json`` and ``imagesTr/``.
        val_fraction: share of training cases held out as ``val`` when there is no ``splits.json``.
        split_seed: seed of that split.
    """

    name = "nifti"
    volumetric = True

    @staticmethod
    def detect(root: Path) -> bool:
        return (root / "dataset.json").is_file() and (root / "imagesTr").is_dir()

    def __init__(self, root: str | Path, *, val_fraction: float = 0.2, split_seed: int = 0) -> None:
        self.root = Path(root)
        manifest_path = self.root / "dataset.json"
        if not manifest_path.is_file():
            raise DataError(f"{self.root} has no dataset.json; a NIfTI dataset needs one with its 'labels'")
        manifest = read_json(manifest_path)
        if not isinstance(manifest, dict):
            raise DataError(f"{manifest_path} must hold a JSON object, got {type(manifest).__name__}")
        with reading(manifest_path):
            self.info = DatasetInfo(class_names=_read_labels(manifest, manifest_path), ignore_index=DEFAULT_IGNORE_INDEX)
            self.per_channel_files = "channel_names" in manifest
            channels = manifest.get("channel_names") or manifest.get("modality") or {"0": ""}
            if not isinstance(channels, (dict, list)):
                raise DataError(f"{manifest_path}: 'channel_names' must map channel numbers to names, got {str(channels)[:60]!r}")
            self.num_channels = len(channels)
        train = self._index(self.root / "imagesTr", self.root / "labelsTr")
        if not train:
            raise DataError(f"no NIfTI images under {self.root / 'imagesTr'}; expected e.g. imagesTr/case_001.nii.gz")
        self._cases = self._split(train, val_fraction, split_seed)
        test = self._index(self.root / "imagesTs", None)
        if test:
            self._cases["test"] = test
        self.description = f"nifti ({len(train)} labelled cases, {self.num_channels} channel(s))"

    def _index(self, images_dir: Path, labels_dir: Path | None) -> list[VolumeCase]:
        nib = _nibabel()
        groups: dict[str, list[Path]] = {}
        for path in _nifti_files(images_dir):
            case = case_id(path)
            match = re.fullmatch(r"(.+)_\d{4}", case)  # nnU-Net v2: one file per channel
            groups.setdefault(match.group(1) if match and self.per_channel_files else case, []).append(path)
        cases = []
        for case, images in sorted(groups.items()):
            headers = []
            for image in images:
                try:
                    headers.append(nib.load(image).shape)
                except Exception as exc:
                    raise DataError(f"cannot read NIfTI image {image} ({exc}); re-export or remove it") from None
            spatial = headers[0][:3]
            channels = sum(s[3] if len(s) > 3 else 1 for s in headers)
            if channels != self.num_channels:
                raise DataError(f"case {case} in {images_dir} has {channels} channel(s), dataset.json declares "
                                f"{self.num_channels}; fix the files or 'channel_names'/'modality'")
            if any(s[:3] != spatial for s in headers):
                raise DataError(f"the channel files of case {case} differ in size: {[tuple(s) for s in headers]}")
            label = None
            if labels_dir is not None:
                label = next((labels_dir / f"{case}{s}" for s in NIFTI_SUFFIXES if (labels_dir / f"{case}{s}").is_file()), None)
                if label is None:
                    naming = ("lists 'channel_names': one file per channel, CASE_0000.nii.gz" if self.per_channel_files
                              else "has no 'channel_names': one image file per case")
                    raise DataError(f"image {images[0]} has no label {labels_dir / (case + '.nii.gz')} (dataset.json {naming}); "
                                    "add it or move the image to imagesTs/")
                label_shape = nib.load(label).shape[:3]
                if label_shape != spatial:
                    raise DataError(f"label {label} is {tuple(label_shape)} but its image is {tuple(spatial)}; "
                                    "labels must lie on the image's grid")
            cases.append(VolumeCase(case, images, label, tuple(int(v) for v in spatial[::-1])))
        return cases

    def _split(self, cases: list[VolumeCase], val_fraction: float, split_seed: int) -> dict[str, list[VolumeCase]]:
        splits_path = self.root / "splits.json"
        by_id = {c.id: c for c in cases}
        if splits_path.is_file():
            try:
                declared = json.loads(splits_path.read_text())
                split = {name: [by_id[i] for i in ids] for name, ids in declared.items()}
            except (json.JSONDecodeError, AttributeError, TypeError) as exc:
                raise DataError(f"{splits_path} must be {{\"train\": [ids], \"val\": [ids]}} ({exc})") from None
            except KeyError as exc:
                raise DataError(f"{splits_path} names case {exc.args[0]!r}, which is not in imagesTr/") from None
            return split
        return seeded_split(cases, val_fraction, split_seed)

    def splits(self) -> list[str]:
        return [s for s, cases in self._cases.items() if cases]

    def dataset(self, split: str) -> VolumeDataset:
        if not self._cases.get(split):
            raise DataError(f"{self.root} has no cases in split {split!r}; splits: {', '.join(self.splits())}")
        return VolumeDataset(self, self._cases[split])

    def labelled(self, split: str) -> bool:
        return all(case.label is not None for case in self._cases.get(split, []))

    def class_pixel_stats(self, split: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Voxel counts per class, reading each label volume once (one at a time)."""
        if not self.labelled(split):
            return None
        return class_pixel_totals((self.read_label(case) for case in self._cases.get(split, [])), self.info.num_classes)

    def read_case(self, case: VolumeCase) -> tuple[np.ndarray, np.ndarray]:
        """``(image float32 [C, D, H, W], affine)`` of ``case``: its channel files stacked."""
        volumes = [read_nifti(path) for path in case.images]
        image = np.concatenate([volume for volume, _ in volumes])
        if not np.isfinite(image).all():
            raise DataError(f"image {case.images[0]} holds NaN or infinite values; clean the volume first")
        return image, volumes[0][1]

    def read_label(self, case: VolumeCase) -> np.ndarray:
        raw = np.asarray(_nibabel().load(case.label).dataobj)
        labels = np.rint(raw).astype(np.int64).transpose(2, 1, 0)
        if not np.array_equal(labels, raw.transpose(2, 1, 0)) or labels.min() < 0 or labels.max() >= self.info.num_classes:
            bad = np.unique(raw[(raw != np.rint(raw)) | (raw < 0) | (raw >= self.info.num_classes)])[:5]
            raise DataError(f"label {case.label} holds values {bad.tolist()} outside the classes 0..{self.info.num_classes - 1} "
                            "of dataset.json; fix the labels or list the class in 'labels'")
        return labels


class VolumeDataset(torch.utils.data.Dataset):
    """The Samples of one split of a :class:`NiftiSource`, read on access."""

    def __init__(self, source: NiftiSource, cases: list[VolumeCase]) -> None:
        self.source, self.cases, self.info = source, cases, source.info

    def __len__(self) -> int:
        return len(self.cases)

    def path(self, index: int) -> Path:
        """The (first) image file of case ``index``."""
        return self.cases[index].images[0]

    def __getitem__(self, index: int) -> Sample:
        case = self.cases[index]
        image, affine = self.source.read_case(case)
        sample: Sample = {
            "image": tv_tensors.Image(torch.from_numpy(image)),
            "meta": {"id": case.id, "path": str(case.images[0]), "orig_size": case.shape, "spacing": voxel_spacing(affine)},
        }
        if case.label is not None:
            sample["mask"] = tv_tensors.Mask(torch.from_numpy(self.source.read_label(case)))
        return sample
