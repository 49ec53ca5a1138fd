"""On-disk dataset formats, one module each, registered by name and auto-detected."""

from __future__ import annotations

from pathlib import Path

from omniseg.data.formats.base import DataSource
from omniseg.data.formats.camvid import CamVidSource
from omniseg.data.formats.cityscapes import CityscapesSource
from omniseg.data.formats.folder import FolderSource
from omniseg.data.formats.nifti import NiftiSource
from omniseg.data.formats.voc import VOCSource
from omniseg.data.formats.yolo import YOLOSource
from omniseg.errors import DataError
from omniseg.registry import Registry

FORMATS: Registry[type] = Registry("dataset format")
FORMATS.add("nifti", NiftiSource, description="dataset.json, imagesTr/*.nii.gz, labelsTr/*.nii.gz (Decathlon, nnU-Net)")
FORMATS.add("voc", VOCSource, description="JPEGImages/, SegmentationClass/*.png, ImageSets/Segmentation/ (Pascal VOC)")
FORMATS.add("camvid", CamVidSource, description="train/ + trainannot/ (SegNet's 11 classes) or label_colors.txt (32 classes)")
FORMATS.add("cityscapes", CityscapesSource, description="leftImg8bit/<split>/<city>/, gtFine/<split>/<city>/*_labelIds.png")
FORMATS.add("yolo", YOLOSource, description="data.yaml (names, train, val), images/<split>/, labels/<split>/*.txt polygons")
# the plain folder layout is the most general (any images/ folder): detection tries it last
FORMATS.add("folder", FolderSource, description="images/<split>/*, masks/<split>/*.png, classes.json", fallback=True)


def load_dataset(path: str | Path, *, format: str = "auto", **options) -> DataSource:
    """Open the dataset at ``path``, detecting its format unless ``format`` names one.

    ``options`` go to the format's reader (the folder reader takes ``val_fraction`` and ``split_seed``).
    """
    root = Path(path)
    if not root.exists():
        raise DataError(f"dataset path {root} does not exist; check --data")
    if format != "auto":
        return FORMATS.get(format)(root, **options)
    for name in sorted(FORMATS, key=lambda n: bool(FORMATS.meta(n).get("fallback"))):
        reader = FORMATS.get(name)
        if reader.detect(root):
            return reader(root, **options)
    looked_for = "; ".join(f"{n}: {FORMATS.meta(n).get('description', '')}" for n in FORMATS)
    raise DataError(f"{root} matches no known dataset layout (looked for {looked_for}); pass --format NAME")


__all__ = ["DataSource", "FORMATS", "CamVidSource", "CityscapesSource", "FolderSource", "NiftiSource", "VOCSource", "YOLOSource", "load_dataset"]
