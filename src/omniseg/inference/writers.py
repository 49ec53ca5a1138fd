"""Writing predictions: palette PNG masks, instance-id PNGs, COCO panoptic PNGs and JSON, and overlays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from omniseg.data.imageio import write_index_png
from omniseg.data.sample import DatasetInfo
from omniseg.models.panoptic.merge import ids_to_rgb, segment_masks
from omniseg.viz.overlay import instance_overlay, overlay


def write_prediction(out_dir: str | Path, stem: str, image: np.ndarray, mask: np.ndarray, info: DatasetInfo) -> list[Path]:
    """Write ``<stem>.png`` (class ids, palette PNG) and ``<stem>_overlay.png``; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mask_path, overlay_path = out_dir / f"{stem}.png", out_dir / f"{stem}_overlay.png"
    write_index_png(mask_path, mask, info.palette)
    Image.fromarray(overlay(image, mask, info.palette, ignore_index=info.ignore_index)).save(overlay_path)
    return [mask_path, overlay_path]


def write_instances(out_dir: str | Path, stem: str, image: np.ndarray, instances: dict, info: DatasetInfo) -> list[Path]:
    """Write ``<stem>_instances.png`` (16-bit instance ids, 0 = none; id k is the k-th best instance, and a
    better one wins where masks overlap) and ``<stem>_overlay.png`` (colours, class names, scores)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    masks = instances["masks"]
    if len(masks) > 65535:
        raise ValueError(f"{len(masks)} instances do not fit a 16-bit PNG; raise the score threshold")
    ids = np.zeros(image.shape[:2], np.uint16)
    for k in range(len(masks) - 1, -1, -1):
        ids[masks[k]] = k + 1
    ids_path, overlay_path = out_dir / f"{stem}_instances.png", out_dir / f"{stem}_overlay.png"
    Image.fromarray(ids).save(ids_path)
    visible = np.stack([ids == k + 1 for k in range(len(masks))]) if len(masks) else masks
    Image.fromarray(instance_overlay(image, visible, instances["labels"].tolist(), info.class_names,
                                     instances["scores"].tolist())).save(overlay_path)
    return [ids_path, overlay_path]


def write_panoptic(out_dir: str | Path, stem: str, image: np.ndarray, ids: np.ndarray, segments: list[dict],
                   info: DatasetInfo) -> list[Path]:
    """Write ``<stem>_panoptic.png`` (COCO panoptic: id = R + 256 G + 256^2 B, 0 = void) and
    ``<stem>_overlay.png`` (each segment in its own colour with its class name)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png_path, overlay_path = out_dir / f"{stem}_panoptic.png", out_dir / f"{stem}_overlay.png"
    Image.fromarray(ids_to_rgb(ids)).save(png_path)
    masks, labels = segment_masks(ids, segments)
    scores = [s["score"] if s["isthing"] else None for s in segments]
    Image.fromarray(instance_overlay(image, masks, labels, info.class_names, scores)).save(overlay_path)
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
