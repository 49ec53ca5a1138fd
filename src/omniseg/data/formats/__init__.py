"""On-disk dataset formats, one module each, registered by name and auto-detected."""

from __future__ import annotations

import inspect
from pathlib import Path

from omniseg.data.formats.ade20k import ADE20KFullSource, ADE20KSource
from omniseg.data.formats.base import DataSource, override_ignore_index, require_instances
from omniseg.data.formats.bsds import BSDSSource
from omniseg.data.formats.camvid import CamVidSource
from omniseg.data.formats.cell_tracking import CellTrackingSource
from omniseg.data.formats.cityscapes import CityscapesSource
from omniseg.data.formats.coco import CocoPanopticSource, CocoSource
from omniseg.data.formats.cvat import CVATSource
from omniseg.data.formats.davis import DavisSource
from omniseg.data.formats.dsb import DSBSource
from omniseg.data.formats.folder import FolderSource
from omniseg.data.formats.labelme import LabelMeSource
from omniseg.data.formats.mots import MOTSSource
from omniseg.data.formats.nifti import NiftiSource
from omniseg.data.formats.via import VIASource
from omniseg.data.formats.voc import VOCSource
from omniseg.data.formats.volumes import VolumePairsSource
from omniseg.data.formats.yolo import YOLOSource
from omniseg.data.formats.youtube_vis import YouTubeVISSource
from omniseg.data.formats.youtube_vos import YouTubeVOSSource
from omniseg.errors import DataError
from omniseg.registry import Registry

FORMATS: Registry[type] = Registry("dataset format")
FORMATS.add("nifti", NiftiSource, description="dataset.json, imagesTr/*.nii.gz, labelsTr/*.nii.gz (Decathlon, nnU-Net)")
FORMATS.add("voc", VOCSource, description="JPEGImages/, SegmentationClass/*.png, ImageSets/Segmentation/ (Pascal VOC)")
FORMATS.add("camvid", CamVidSource, description="train/ + trainannot/ (SegNet's 11 classes) or label_colors.txt (32 classes)")
FORMATS.add("cityscapes", CityscapesSource, description="leftImg8bit/<split>/<city>/, gtFine/<split>/<city>/*_labelIds.png")
FORMATS.add("yolo", YOLOSource, description="data.yaml (names, train, val), images/<split>/, labels/<split>/*.txt polygons")
FORMATS.add("ade20k", ADE20KSource, description="ADEChallengeData2016: images/training/, annotations/training/*.png (150 classes)")
FORMATS.add("ade20k_full", ADE20KFullSource, description="ADE20K full: images/ADE/<split>/**/*_seg.png + per-image JSON")
FORMATS.add("coco", CocoSource, description="annotations/instances_<split>.json (+ stuff_<split>.json), or one COCO JSON")
FORMATS.add("coco_panoptic", CocoPanopticSource, description="annotations/panoptic_<split>.json + panoptic_<split>/*.png")
FORMATS.add("labelme", LabelMeSource, description="*.json LabelMe files (shapes, imagePath), optional labels.txt")
FORMATS.add("via", VIASource, description="a VIA 2.x JSON (export with regions, or project with _via_img_metadata)")
FORMATS.add("cvat", CVATSource, description="a CVAT for images 1.1 XML (<annotations><image>...)")
FORMATS.add("davis", DavisSource, description="JPEGImages/<video>/*.jpg + Annotations/<video>/*.png indexed by object id (DAVIS)")
FORMATS.add("youtube_vos", YouTubeVOSSource, description="<split>/JPEGImages/<video>/, <split>/Annotations/<video>/*.png, <split>/meta.json")
FORMATS.add("youtube_vis", YouTubeVISSource, description="<split>/JPEGImages/<video>/ + <split>/instances.json or <split>.json (YouTube-VIS)")
FORMATS.add("mots", MOTSSource, description="instances_txt/<seq>.txt + images (KITTI-MOTS), or <split>/<seq>/gt/gt.txt + img1/ (MOTSChallenge)")
FORMATS.add("cell_tracking", CellTrackingSource, description="<NN>/t*.tif + <NN>_GT/TRA/man_track*.tif, man_track.txt (Cell Tracking Challenge)")
FORMATS.add("dsb", DSBSource, description="<id>/images/<id>.png + <id>/masks/*.png, one PNG per instance")
FORMATS.add("bsds", BSDSSource, description="images/<split>/*.jpg + groundTruth/<split>/*.mat (BSDS human segmentations)")
FORMATS.add("volumes", VolumePairsSource, description="X.nii.gz + X_label.nii.gz or X_image.nrrd + X_label.nrrd pairs")
# the plain folder layout is the most general (any images/ folder): detection tries it last
FORMATS.add("folder", FolderSource, description="images/<split>/*, masks/<split>/*.png, classes.json", fallback=True)


def detect_format(root: Path) -> str:
    """The name of the first format (the folder fallback last) whose layout ``root`` has."""
    for name in sorted(FORMATS, key=lambda n: bool(FORMATS.meta(n).get("fallback"))):
        if FORMATS.get(name).detect(root):
            return name
    looked_for = "; ".join(f"{n}: {FORMATS.meta(n).get('description', '')}" for n in FORMATS)
    raise DataError(f"{root} matches no known dataset layout (looked for {looked_for}); pass --format NAME")


def load_dataset(path: str | Path, *, format: str = "auto", ignore_index: int | None = None, **options) -> DataSource:
    """Open the dataset at ``path``, detecting its format unless ``format`` names one.

    ``ignore_index`` replaces the dataset's own void value (the mask value no loss or metric counts);
    ``options`` go to the format's reader (most take ``val_fraction`` and ``split_seed``).
    """
    root = Path(path)
    if not root.exists():
        raise DataError(f"dataset path {root} does not exist; check --data")
    reader = FORMATS.get(detect_format(root) if format == "auto" else format)
    if ignore_index is not None and "ignore_index" in inspect.signature(reader).parameters:
        return reader(root, ignore_index=ignore_index, **options)  # readers that check labels at open take it first
    source = reader(root, **options)
    if ignore_index is not None:
        source.info = override_ignore_index(source.info, ignore_index, root)
    return source


__all__ = [
    "ADE20KFullSource", "ADE20KSource", "BSDSSource", "CVATSource", "CamVidSource", "CityscapesSource", "CocoPanopticSource",
    "CellTrackingSource", "CocoSource", "DSBSource", "DavisSource", "MOTSSource", "YouTubeVISSource", "YouTubeVOSSource", "DataSource", "FORMATS", "FolderSource", "LabelMeSource", "NiftiSource", "VIASource", "VOCSource",
    "VolumePairsSource", "YOLOSource", "detect_format", "load_dataset", "require_instances",
]
