"""Segment everything: Segment Anything prompted by a grid of points (over the image and, optionally, over
layers of overlapping crops), masks kept by predicted IoU and stability, duplicates removed by box NMS,
small islands and holes cleaned, output as COCO RLE.

The masks are SAM's automatic generator's (the same filters on the same logits); the work is cheaper:
the IoU filter runs before the costly upscaling to the image size, and RLE is encoded by pycocotools.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import product

import cv2
import numpy as np
import torch
from pycocotools import mask as mask_utils
from torchvision.ops import batched_nms, box_area

from omniseg.core.rle import encode_rle
from omniseg.errors import ConfigError
from omniseg.data.imageio import ImageLike, rgb_uint8
from omniseg.inference.promptable.prompt_predictor import PromptPredictor


def point_grid(per_side: int) -> np.ndarray:
    """``per_side``^2 points ``[P, 2]`` (x, y) at the centres of an even grid over the unit square."""
    offset = 1 / (2 * per_side)
    side = np.linspace(offset, 1 - offset, per_side)
    return np.stack([np.tile(side[None, :], (per_side, 1)), np.tile(side[:, None], (1, per_side))], axis=-1).reshape(-1, 2)


def crop_boxes(size: tuple[int, int], layers: int, overlap_ratio: float) -> tuple[list[list[int]], list[int]]:
    """The whole image, then for layer i (1..layers) a (2^i)^2 grid of overlapping crops: ``[x0, y0, x1, y1]``
    boxes and their layer."""
    height, width = size
    boxes, layer_of = [[0, 0, width, height]], [0]
    for layer in range(1, layers + 1):
        per_side = 2 ** layer
        overlap = int(overlap_ratio * min(height, width) * (2 / per_side))
        crop_w = int(math.ceil((overlap * (per_side - 1) + width) / per_side))
        crop_h = int(math.ceil((overlap * (per_side - 1) + height) / per_side))
        for x0, y0 in product([int((crop_w - overlap) * i) for i in range(per_side)], [int((crop_h - overlap) * i) for i in range(per_side)]):
            boxes.append([x0, y0, min(x0 + crop_w, width), min(y0 + crop_h, height)])
            layer_of.append(layer)
    return boxes, layer_of


def masks_to_boxes(masks: torch.Tensor) -> torch.Tensor:
    """Tight ``[x0, y0, x1, y1]`` boxes (inclusive pixel indices, SAM's convention) of ``[N, H, W]`` masks; 0s when empty."""
    if masks.shape[0] == 0:
        return torch.zeros(0, 4, dtype=torch.int64)
    rows, cols = masks.any(dim=2), masks.any(dim=1)
    height, width = masks.shape[1:]
    ys, xs = torch.arange(height), torch.arange(width)
    bottom = (rows * ys).amax(1)
    top = torch.where(rows, ys, height).amin(1)
    right = (cols * xs).amax(1)
    left = torch.where(cols, xs, width).amin(1)
    boxes = torch.stack([left, top, right, bottom], dim=1)
    return boxes * (rows.any(1))[:, None]


def stability_scores(logits: torch.Tensor, threshold: float, offset: float) -> torch.Tensor:
    """IoU of the masks thresholded at ``threshold + offset`` and ``threshold - offset`` (the first lies in the second)."""
    inner = (logits > threshold + offset).sum((-1, -2), dtype=torch.int64)
    outer = (logits > threshold - offset).sum((-1, -2), dtype=torch.int64)
    return inner / outer


def remove_small_regions(mask: np.ndarray, min_area: int, mode: str) -> tuple[np.ndarray, bool]:
    """Fill holes (``mode="holes"``) or drop islands (``"islands"``) under ``min_area`` pixels (8-connectivity);
    returns the mask and whether it changed. Dropping every island keeps the largest."""
    holes = mode == "holes"
    count, regions, stats, _ = cv2.connectedComponentsWithStats((holes ^ mask).astype(np.uint8), 8)
    sizes = stats[1:, -1]
    small = [i + 1 for i, s in enumerate(sizes) if s < min_area]
    if not small:
        return mask, False
    fill = [0] + small
    if not holes:
        fill = [i for i in range(count) if i not in fill] or [int(np.argmax(sizes)) + 1]
    return np.isin(regions, fill), True


@dataclass
class AutomaticMaskGenerator:
    """Every object of an image from a point grid. Settings are Segment Anything's (defaults tuned for ViT-H):

    Args:
        points_per_side: grid points along each side (``points_per_side``^2 prompts in the first layer).
        points_per_batch: prompts answered in one decoder call.
        pred_iou_thresh: keep masks whose predicted IoU exceeds this.
        stability_score_thresh: keep masks whose stability (IoU of the masks at threshold +/- offset) reaches this.
        box_nms_thresh: box IoU above which a lower-scoring mask is a duplicate (within a crop).
        crop_n_layers: layers of crops run again (layer i has (2^i)^2 crops).
        crop_nms_thresh: the duplicate threshold across crops (smaller crops lose).
        crop_overlap_ratio: overlap of the first layer's crops, as a share of the image's short side.
        crop_n_points_downscale_factor: layer i uses ``points_per_side / factor^i`` points per side.
        min_mask_region_area: fill holes and remove islands under this many pixels (0: keep them).
    """

    predictor: PromptPredictor
    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = 0
    crop_nms_thresh: float = 0.7
    crop_overlap_ratio: float = 512 / 1500
    crop_n_points_downscale_factor: int = 1
    min_mask_region_area: int = 0

    def __post_init__(self) -> None:
        if self.points_per_side < 1 or self.points_per_batch < 1:
            raise ConfigError("points_per_side and points_per_batch must be at least 1")
        self.grids = [point_grid(int(self.points_per_side / self.crop_n_points_downscale_factor ** i))
                      for i in range(self.crop_n_layers + 1)]

    def generate(self, image: ImageLike) -> list[dict]:
        """COCO-style records, best first within each crop: ``segmentation`` (COCO RLE), ``area``, ``bbox``
        (x, y, w, h), ``predicted_iou``, ``stability_score``, ``point_coords`` ([[x, y]]), ``crop_box`` (x, y, w, h)."""
        array = rgb_uint8(image)
        size = array.shape[:2]
        boxes, layers = crop_boxes(size, self.crop_n_layers, self.crop_overlap_ratio)
        found = [self._crop(array, box, layer) for box, layer in zip(boxes, layers)]
        data = {k: [v for part in found for v in part[k]] if k == "rles" else torch.cat([part[k] for part in found])
                for k in found[0]}
        if len(boxes) > 1 and len(data["rles"]):
            keep = batched_nms(data["boxes"].float(), 1 / box_area(data["crop_boxes"].float()),
                               torch.zeros(len(data["rles"])), self.crop_nms_thresh)
            data = _select(data, keep)
        if self.min_mask_region_area > 0 and len(data["rles"]):
            data = self._clean(data)
        records = []
        for i, rle in enumerate(data["rles"]):
            x0, y0, x1, y1 = data["boxes"][i].tolist()
            cx0, cy0, cx1, cy1 = data["crop_boxes"][i].tolist()
            records.append({"segmentation": rle, "area": int(mask_utils.area(_coco(rle))), "bbox": [x0, y0, x1 - x0, y1 - y0],
                            "predicted_iou": float(data["iou_preds"][i]), "point_coords": [data["points"][i].tolist()],
                            "stability_score": float(data["stability_score"][i]), "crop_box": [cx0, cy0, cx1 - cx0, cy1 - cy0]})
        return records

    def detections(self, image: torch.Tensor | np.ndarray) -> dict:
        """:meth:`generate` as a detector's output (the :data:`~omniseg.inference.tiling.tiled_instances.Detect` form):
        ``masks`` [N, 1, H, W], ``labels`` (all 1), ``scores`` (predicted IoU), ``boxes`` (XYXY)."""
        array = image.permute(1, 2, 0).numpy() if isinstance(image, torch.Tensor) else image
        records = self.generate(array)
        height, width = array.shape[:2]
        masks = np.stack([mask_utils.decode(_coco(r["segmentation"])) for r in records]) if records else np.zeros((0, height, width))
        return {"masks": torch.from_numpy(masks.astype(np.float32))[:, None], "labels": torch.ones(len(records), dtype=torch.int64),
                "scores": torch.tensor([r["predicted_iou"] for r in records]),
                "boxes": torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (r["bbox"] for r in records)]).reshape(-1, 4)}

    def generate_tiled(self, image: ImageLike, *, tile: int, overlap: float = 0.5) -> list[dict]:
        """:meth:`generate` over the tiles of a large image (``tile`` pixels, ``overlap`` of a tile), the tiles'
        masks merged at the seams as a detector's are (:func:`~omniseg.inference.tiling.tiled_instances.tiled_instances`):
        records with ``segmentation`` (COCO RLE of the image), ``area``, ``bbox`` and ``predicted_iou``."""
        from omniseg.inference.tiling.tiled_instances import tiled_instances

        array = rgb_uint8(image)
        merged = tiled_instances(self.detections, torch.from_numpy(array).permute(2, 0, 1), tile=tile, overlap=overlap,
                                 score_threshold=0.0)
        records = []
        for k, (x0, y0, x1, y1) in enumerate(merged["boxes"].tolist()):
            rle = encode_rle(merged["masks"][k])
            records.append({"segmentation": rle, "area": int(mask_utils.area(_coco(rle))), "bbox": [x0, y0, x1 - x0, y1 - y0],
                            "predicted_iou": float(merged["scores"][k])})
        return records

    def _crop(self, image: np.ndarray, crop: list[int], layer: int) -> dict:
        x0, y0, x1, y1 = crop
        height, width = image.shape[:2]
        self.predictor.set_image(image[y0:y1, x0:x1])
        points = self.grids[layer] * np.array([[x1 - x0, y1 - y0]])
        parts = [self._batch(points[i: i + self.points_per_batch], crop, (height, width))
                 for i in range(0, len(points), self.points_per_batch)]
        data = {k: [v for part in parts for v in part[k]] if k == "rles" else torch.cat([part[k] for part in parts]) for k in parts[0]}
        keep = batched_nms(data["boxes"].float(), data["iou_preds"], torch.zeros(len(data["rles"])), self.box_nms_thresh)
        data = _select(data, keep)
        offset = torch.tensor([x0, y0])
        data["boxes"] = data["boxes"] + offset.repeat(2)
        data["points"] = data["points"] + offset
        data["crop_boxes"] = torch.tensor([crop] * len(data["rles"]), dtype=torch.int64).reshape(-1, 4)
        return data

    def _batch(self, points: np.ndarray, crop: list[int], size: tuple[int, int]) -> dict:
        predictor = self.predictor
        coords = predictor.to_input_frame(points)[:, None]
        low_res, iou = predictor.decode(coords, torch.ones(len(points), 1, dtype=torch.int64, device=coords.device), None, None, True)
        low_res, iou = low_res.flatten(0, 1), iou.flatten(0, 1)
        repeated = torch.as_tensor(np.repeat(points, low_res.shape[0] // len(points), axis=0))
        keep = iou > self.pred_iou_thresh if self.pred_iou_thresh > 0 else torch.ones_like(iou, dtype=torch.bool)
        low_res, iou, repeated = low_res[keep], iou[keep], repeated[keep]
        threshold = predictor.model.mask_threshold
        masks, stability = [], []
        for start in range(0, len(low_res), 16):  # the image-size logits of 16 masks at a time
            with torch.no_grad():
                logits = predictor.upscale(low_res[start: start + 16, None])[:, 0].cpu()
            stability.append(stability_scores(logits, threshold, self.stability_score_offset))
            masks.append(logits > threshold)
        height, width = predictor.original_size
        masks = torch.cat(masks) if masks else torch.zeros(0, height, width, dtype=torch.bool)
        stability = torch.cat(stability) if stability else torch.zeros(0)
        keep = stability >= self.stability_score_thresh if self.stability_score_thresh > 0 else torch.ones_like(stability, dtype=torch.bool)
        masks, iou, repeated, stability = masks[keep], iou[keep].cpu(), repeated[keep], stability[keep]
        boxes = masks_to_boxes(masks)
        keep = ~_near_crop_edge(boxes, crop, [0, 0, size[1], size[0]])
        masks, boxes = masks[keep], boxes[keep]
        rles = [encode_rle(_uncrop(m, crop, size)) for m in masks.numpy()]
        return {"rles": rles, "boxes": boxes, "iou_preds": iou[keep], "points": repeated[keep],
                "stability_score": stability[keep]}

    def _clean(self, data: dict) -> dict:
        masks, unchanged = [], []
        for rle in data["rles"]:
            mask = mask_utils.decode(_coco(rle)).astype(bool)
            mask, filled = remove_small_regions(mask, self.min_mask_region_area, "holes")
            mask, dropped = remove_small_regions(mask, self.min_mask_region_area, "islands")
            masks.append(mask)
            unchanged.append(not (filled or dropped))
        boxes = masks_to_boxes(torch.from_numpy(np.stack(masks)))
        scores = torch.tensor(unchanged, dtype=torch.float32)
        keep = batched_nms(boxes.float(), scores, torch.zeros(len(masks)), max(self.box_nms_thresh, self.crop_nms_thresh))
        for i in keep.tolist():
            if not unchanged[i]:
                data["rles"][i] = encode_rle(masks[i])
                data["boxes"][i] = boxes[i]
        return _select(data, keep)


def _select(data: dict, keep: torch.Tensor) -> dict:
    index = keep.tolist()
    return {k: [v[i] for i in index] if k == "rles" else v[keep] for k, v in data.items()}


def _coco(rle: dict) -> dict:
    return {"size": rle["size"], "counts": rle["counts"].encode("ascii")}


def _near_crop_edge(boxes: torch.Tensor, crop: list[int], image_box: list[int], atol: float = 20.0) -> torch.Tensor:
    """Masks touching a crop's edge where it is not the image's edge (they continue outside the crop)."""
    offset = torch.tensor([crop[0], crop[1], crop[0], crop[1]])
    boxes = (boxes + offset).float()
    near_crop = torch.isclose(boxes, torch.tensor(crop, dtype=torch.float32)[None], atol=atol, rtol=0)
    near_image = torch.isclose(boxes, torch.tensor(image_box, dtype=torch.float32)[None], atol=atol, rtol=0)
    return (near_crop & ~near_image).any(dim=1)


def _uncrop(mask: np.ndarray, crop: list[int], size: tuple[int, int]) -> np.ndarray:
    x0, y0, x1, y1 = crop
    if (x0, y0, x1, y1) == (0, 0, size[1], size[0]):
        return mask
    full = np.zeros(size, bool)
    full[y0:y1, x0:x1] = mask
    return full
