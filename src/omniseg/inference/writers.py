"""Writing predictions: palette PNG masks, instance-id PNGs, COCO panoptic PNGs and JSON, and overlays. Every
file is written atomically (a temporary name, then a rename): an interrupted run never leaves half a PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from omniseg.core.atomic import write_with
from omniseg.core.instance_masks import InstanceMasks, mask_crops
from omniseg.data.imageio import write_index_png
from omniseg.data.sample import DatasetInfo
from omniseg.models.panoptic.merge import ids_to_rgb, segment_masks
from omniseg.viz.overlay import instance_overlay, overlay


def save_image(path: Path, pixels: np.ndarray) -> None:
    """``pixels`` as an image file (format by the suffix), written atomically."""
    write_with(path, lambda temporary: Image.fromarray(pixels).save(temporary))


def write_prediction(out_dir: str | Path, stem: str, image: np.ndarray, mask: np.ndarray, info: DatasetInfo) -> list[Path]:
    """Write ``<stem>.png`` (class ids, palette PNG) and ``<stem>_overlay.png``; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mask_path, overlay_path = out_dir / f"{stem}.png", out_dir / f"{stem}_overlay.png"
    write_with(mask_path, lambda path: write_index_png(path, mask, info.palette))
    save_image(overlay_path, overlay(image, mask, info.palette, ignore_index=info.ignore_index))
    return [mask_path, overlay_path]


def write_instances(out_dir: str | Path, stem: str, image: np.ndarray, instances: dict, info: DatasetInfo) -> list[Path]:
    """Write ``<stem>_instances.png`` (16-bit instance ids, 0 = none; id k is the k-th best instance, and a
    better one wins where masks overlap) and ``<stem>_overlay.png`` (colours, class names, scores)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    masks = instances["masks"]
    if len(masks) > 65535:
        raise ValueError(f"{len(masks)} instances do not fit a 16-bit PNG; raise the score threshold")
    crops = list(mask_crops(masks))
    ids = np.zeros(image.shape[:2], np.uint16)
    for k in range(len(crops) - 1, -1, -1):  # the better instance painted last wins
        crop, (top, left) = crops[k]
        ids[top:top + crop.shape[0], left:left + crop.shape[1]][crop] = k + 1
    ids_path, overlay_path = out_dir / f"{stem}_instances.png", out_dir / f"{stem}_overlay.png"
    save_image(ids_path, ids)
    visible = InstanceMasks([crop & (ids[top:top + crop.shape[0], left:left + crop.shape[1]] == k + 1)
                             for k, (crop, (top, left)) in enumerate(crops)], [offset for _, offset in crops], ids.shape)
    save_image(overlay_path, instance_overlay(image, visible, instances["labels"].tolist(), info.class_names,
                                              instances["scores"].tolist()))
    return [ids_path, overlay_path]


def write_panoptic(out_dir: str | Path, stem: str, image: np.ndarray, ids: np.ndarray, segments: list[dict],
                   info: DatasetInfo) -> list[Path]:
    """Write ``<stem>_panoptic.png`` (COCO panoptic: id = R + 256 G + 256^2 B, 0 = void) and
    ``<stem>_overlay.png`` (each segment in its own colour with its class name)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png_path, overlay_path = out_dir / f"{stem}_panoptic.png", out_dir / f"{stem}_overlay.png"
    save_image(png_path, ids_to_rgb(ids))
    masks, labels = segment_masks(ids, segments)
    scores = [s["score"] if s["isthing"] else None for s in segments]
    save_image(overlay_path, instance_overlay(image, masks, labels, info.class_names, scores))
    return [png_path, overlay_path]


def panoptic_json(annotations: list[dict], info: DatasetInfo) -> dict:
    """The COCO panoptic JSON of predicted ``annotations`` (``{"image_id", "file_name", "segments_info"}``,
    with ``images`` entries under ``"image"``), categories from ``info`` (background included as stuff)."""
    return {
        "images": [a["image"] for a in annotations],
        "annotations": [{k: v for k, v in a.items() if k != "image"} for a in annotations],
        "categories": [{"id": c, "name": name, "isthing": int(c in info.things), "color": list(info.palette[c])}
                       for c, name in enumerate(info.class_names)],
    }
