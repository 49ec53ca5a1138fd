"""The labelling folder: objects kept in the page, saved image by image as COCO instances (RLE) that
``omniseg train --task instance --data DIR`` reads; every write is atomic (a temporary file, then a rename)."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import numpy as np

from omniseg.core.atomic import write_bytes
from omniseg.core.rle import coco_bbox, encode_rle

_lock = threading.Lock()


def save_labels(label_dir: Path, image_name: str, image_bytes: bytes, image_size: tuple[int, int],
                objects: list[tuple[str, np.ndarray]]) -> dict:
    """Store the image (its uploaded bytes) and its ``objects`` (class name, ``[H, W]`` bool mask), replacing
    what this image had. Returns ``{"images", "annotations", "categories"}`` counts of the whole folder."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(image_name).name) or "image.png"
    images_dir, annotations_dir = label_dir / "images", label_dir / "annotations"
    images_dir.mkdir(parents=True, exist_ok=True)
    annotations_dir.mkdir(parents=True, exist_ok=True)
    path = annotations_dir / "instances.json"
    with _lock:
        coco = json.loads(path.read_text()) if path.is_file() else {"images": [], "annotations": [], "categories": []}
        write_bytes(images_dir / stem, image_bytes)
        image = next((i for i in coco["images"] if i["file_name"] == stem), None)
        if image is None:
            image = {"id": max((i["id"] for i in coco["images"]), default=0) + 1, "file_name": stem}
            coco["images"].append(image)
        image.update(height=int(image_size[0]), width=int(image_size[1]))
        coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] != image["id"]]
        categories = {c["name"]: c["id"] for c in coco["categories"]}
        next_id = max((a["id"] for a in coco["annotations"]), default=0) + 1
        for name, mask in objects:
            if name not in categories:
                categories[name] = max(categories.values(), default=0) + 1
                coco["categories"].append({"id": categories[name], "name": name})
            if not mask.any():
                continue
            coco["annotations"].append({
                "id": next_id, "image_id": image["id"], "category_id": categories[name], "segmentation": encode_rle(mask),
                "area": int(mask.sum()), "iscrowd": 0,
                "bbox": coco_bbox(mask)})
            next_id += 1
        write_bytes(path, json.dumps(coco).encode())
    return {"images": len(coco["images"]), "annotations": len(coco["annotations"]), "categories": len(coco["categories"])}
