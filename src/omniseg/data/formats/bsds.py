"""The Berkeley Segmentation Dataset (BSDS300/500): several human segmentations per image, no classes::

    DATA/images/{train,val,test}/*.jpg
    DATA/groundTruth/{train,val,test}/*.mat     MATLAB cell array ``groundTruth``; each entry a struct with
                                                ``Segmentation`` (region ids, 1-based) and ``Boundaries`` (0/1)

A Sample holds every annotator's truth: ``segmentations`` ``[A, H, W]`` int64 region ids and
``boundaries`` ``[A, H, W]`` bool. There is no class ``mask``: BSDS is for the unsupervised region
and boundary measures (and the classical methods), not for semantic training. The ``.mat`` files are
read with scipy's MATLAB reader (data only; nothing is executed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
import torch
from torchvision import tv_tensors

from omniseg.data.imageio import list_image_files, read_image
from omniseg.data.sample import DEFAULT_IGNORE_INDEX, DatasetInfo, Sample, make_sample
from omniseg.errors import DataError
from omniseg.core.boundaries import label_boundaries


def _bsds_root(root: Path) -> Path | None:
    for candidate in (root, root / "BSDS500" / "data", root / "data"):
        if (candidate / "groundTruth").is_dir() and (candidate / "images").is_dir():
            return candidate
    return None


def read_bsds_truth(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Every annotator's ``(segmentations [A, H, W] int64, boundaries [A, H, W] bool)`` of one ``.mat`` file."""
    path = Path(path)
    try:
        values = scipy.io.loadmat(path, simplify_cells=True)
    except (OSError, ValueError, TypeError, NotImplementedError) as exc:
        raise DataError(f"{path} is not a readable MATLAB file ({exc})") from None
    truth = values.get("groundTruth")
    truth = [truth] if isinstance(truth, dict) else truth
    if not isinstance(truth, (list, np.ndarray)) or not len(truth):
        raise DataError(f"{path} has no 'groundTruth' cell array of human segmentations")
    segmentations, boundaries = [], []
    for number, entry in enumerate(truth):
        if not isinstance(entry, dict) or "Segmentation" not in entry:
            raise DataError(f"{path}: groundTruth entry {number + 1} has no 'Segmentation'")
        segmentation = np.asarray(entry["Segmentation"], dtype=np.int64)
        if segmentations and segmentation.shape != segmentations[0].shape:
            raise DataError(f"{path}: annotator {number + 1}'s segmentation is {segmentation.shape}, the first is {segmentations[0].shape}")
        segmentations.append(segmentation)
        boundary = entry.get("Boundaries")
        boundaries.append(np.asarray(boundary, bool) if boundary is not None else label_boundaries(segmentation))
    return np.stack(segmentations), np.stack(boundaries)


class BSDSSource:
    """BSDS images with all their human segmentations (see the module docstring)."""

    name = "bsds"
    volumetric = False

    @staticmethod
    def detect(root: Path) -> bool:
        return _bsds_root(root) is not None

    def __init__(self, root: str | Path, **_: object) -> None:
        self.root = _bsds_root(Path(root))
        if self.root is None:
            raise DataError(f"{root} has no BSDS layout (images/<split>/*.jpg and groundTruth/<split>/*.mat)")
        self.info = DatasetInfo(["region"], ignore_index=DEFAULT_IGNORE_INDEX)
        self.items: dict[str, list[tuple[Path, Path | None]]] = {}
        for folder in sorted(p for p in (self.root / "images").iterdir() if p.is_dir()):
            images = list_image_files(folder)
            truth = self.root / "groundTruth" / folder.name
            self.items[folder.name] = [(i, truth / f"{i.stem}.mat" if (truth / f"{i.stem}.mat").is_file() else None) for i in images]
        self.description = "bsds (human segmentations, no classes)"

    def splits(self) -> list[str]:
        return [s for s, items in self.items.items() if items]

    def labelled(self, split: str) -> bool:
        return False  # no class masks: BSDS is not for semantic training

    def class_pixel_stats(self, split: str) -> None:
        return None

    def dataset(self, split: str) -> BSDSDataset:
        if not self.items.get(split):
            raise DataError(f"{self.root} has no images in split {split!r}; splits found: {', '.join(self.splits()) or 'none'}")
        return BSDSDataset(self.items[split], self.info)


class BSDSDataset(torch.utils.data.Dataset):
    def __init__(self, items: list[tuple[Path, Path | None]], info: DatasetInfo) -> None:
        self.items, self.info = items, info

    def __len__(self) -> int:
        return len(self.items)

    def path(self, index: int) -> Path:
        return self.items[index][0]

    def __getitem__(self, index: int) -> Sample:
        image_path, truth_path = self.items[index]
        image = read_image(image_path)
        sample = make_sample(image, sample_id=image_path.stem, path=str(image_path))
        if truth_path is not None:
            segmentations, boundaries = read_bsds_truth(truth_path)
            if segmentations.shape[1:] != tuple(image.shape[-2:]):
                raise DataError(f"{truth_path} segmentations are {segmentations.shape[2]}x{segmentations.shape[1]} "
                                f"but {image_path} is {image.shape[-1]}x{image.shape[-2]}")
            sample["segmentations"] = tv_tensors.Mask(torch.from_numpy(segmentations))
            sample["boundaries"] = tv_tensors.Mask(torch.from_numpy(boundaries))
        return sample
