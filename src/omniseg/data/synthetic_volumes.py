"""Procedural 3D volumes for the volumetric models: balls and boxes in a noisy, shaded volume.

Like MR scans, the intensities carry a smooth bias field and noise, and the two object classes share
one intensity range, so a model has to tell them apart by shape. Volumes are a pure function of
``(seed, index)``; :func:`write_synthetic_volumes` writes them in the Medical Segmentation Decathlon
layout (``imagesTr/``, ``labelsTr/``, ``dataset.json``) that the NIfTI reader opens.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torchvision import tv_tensors

from omniseg.data.sample import DEFAULT_IGNORE_INDEX, DatasetInfo, Sample

VOLUME_CLASSES = ["background", "ball", "box"]


def synthetic_volume_info() -> DatasetInfo:
    return DatasetInfo(class_names=list(VOLUME_CLASSES), things=[1, 2], ignore_index=DEFAULT_IGNORE_INDEX)


def generate_volume(seed: int, index: int, *, size: int = 32, max_objects: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """``(image float32 [D, H, W], labels int64 [D, H, W])`` of one volume with 1..max_objects objects."""
    rng = np.random.default_rng([seed, index])
    grid = np.stack(np.meshgrid(*(np.arange(size),) * 3, indexing="ij"), axis=-1).astype(np.float32)
    labels = np.zeros((size,) * 3, np.int64)
    image = np.full((size,) * 3, rng.uniform(0.1, 0.3), np.float32)
    for _ in range(rng.integers(1, max_objects + 1)):
        kind = int(rng.integers(1, len(VOLUME_CLASSES)))
        radius = rng.uniform(0.16, 0.28) * size
        center = rng.uniform(radius, size - radius, 3)
        if kind == 1:
            inside = np.linalg.norm(grid - center, axis=-1) <= radius
        else:
            half = radius * rng.uniform(0.7, 1.0, 3)
            inside = (np.abs(grid - center) <= half).all(-1)
        labels[inside] = kind
        image[inside] = rng.uniform(0.5, 0.9)
    bias = 1 + 0.2 * np.sin(grid[..., 0] / size * np.pi * rng.uniform(0.5, 1.5) + rng.uniform(0, np.pi))
    image = image * bias + rng.normal(0, 0.06, image.shape).astype(np.float32)
    return image.astype(np.float32), labels


class SyntheticVolumes(torch.utils.data.Dataset):
    """In-memory dataset of single-channel synthetic volume Samples (``image [1, D, H, W]`` float)."""

    num_classes = len(VOLUME_CLASSES)

    def __init__(self, num_samples: int = 20, *, size: int = 32, seed: int = 0) -> None:
        self.num_samples, self.size, self.seed = num_samples, size, seed
        self.info = synthetic_volume_info()

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < self.num_samples:
            raise IndexError(index)
        image, labels = generate_volume(self.seed, index, size=self.size)
        return {
            "image": tv_tensors.Image(torch.from_numpy(image)[None]),
            "mask": tv_tensors.Mask(torch.from_numpy(labels)),
            "meta": {"id": f"volume_{index:03d}", "path": "", "orig_size": tuple(labels.shape)},
        }


def write_synthetic_volumes(root: str | Path, *, count: int = 24, size: int = 32, seed: int = 0) -> Path:
    """Write ``count`` volumes as NIfTI in the Decathlon layout (needs nibabel, the ``medical`` extra)."""
    import nibabel as nib

    root = Path(root)
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(parents=True, exist_ok=True)
    training = []
    for index in range(count):
        image, labels = generate_volume(seed, index, size=size)
        name = f"volume_{index:03d}.nii.gz"
        # NIfTI stores (x, y, z); our arrays are (D, H, W) = (z, y, x)
        nib.save(nib.Nifti1Image(image.transpose(2, 1, 0), np.eye(4)), root / "imagesTr" / name)
        nib.save(nib.Nifti1Image(labels.transpose(2, 1, 0).astype(np.uint8), np.eye(4)), root / "labelsTr" / name)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    manifest = {
        "name": "omniseg synthetic volumes",
        "modality": {"0": "MRI"},
        "labels": {str(i): name for i, name in enumerate(VOLUME_CLASSES)},
        "numTraining": count,
        "training": training,
        "test": [],
    }
    (root / "dataset.json").write_text(json.dumps(manifest, indent=2))
    return root
