"""Colouring label maps and blending them over images."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from omniseg.core.boundaries import label_boundaries
from omniseg.core.instance_masks import mask_crops


def colorize(mask: np.ndarray, palette: Sequence[Sequence[int]], *, ignore_index: int) -> np.ndarray:
    """Class ids [H, W] -> RGB uint8 [H, W, 3]; ignored and unknown ids are white (a negative ``ignore_index``: none
    is ignored)."""
    lut = np.full((max(len(palette), ignore_index + 1, int(mask.max(initial=0)) + 1), 3), 255, np.uint8)
    lut[: len(palette)] = np.asarray(palette, np.uint8)
    if ignore_index >= 0:
        lut[ignore_index] = 255
    return lut[np.asarray(mask, np.int64)]


def overlay(image: np.ndarray, mask: np.ndarray, palette: Sequence[Sequence[int]], *, alpha: float = 0.5,
            ignore_index: int, background: int | None = 0) -> np.ndarray:
    """Blend the coloured ``mask`` over ``image`` (uint8 [H, W, 3]); ``background`` pixels stay unblended."""
    colours = colorize(mask, palette, ignore_index=ignore_index).astype(np.float32)
    blended = image.astype(np.float32) * (1 - alpha) + colours * alpha
    keep = (mask == ignore_index) if background is None else (mask == ignore_index) | (mask == background)
    blended[keep] = image[keep]
    return blended.round().clip(0, 255).astype(np.uint8)


def grey_to_rgb(values: np.ndarray) -> np.ndarray:
    """A float slice stretched to 0..255 between its 1st and 99th percentiles, as an RGB uint8 image."""
    low, high = np.percentile(values, [1, 99])
    grey = np.clip((values - low) / max(high - low, 1e-6), 0, 1) * 255
    return np.repeat(grey.astype(np.uint8)[..., None], 3, axis=-1)


def instance_overlay(image: np.ndarray, masks, labels: Sequence[int], class_names: Sequence[str],
                     scores: Sequence[float] | None = None, *, alpha: float = 0.45) -> np.ndarray:
    """Instances (``masks`` bool [N, H, W] or :class:`~omniseg.core.instance_masks.InstanceMasks`, painted in
    order) over ``image`` (uint8 [H, W, 3]): one colour each, an outline, and the class name (with the score,
    where one is given) at the top left of each box. Each object is drawn on its own box only."""
    import cv2

    from omniseg.core.info import default_palette

    canvas = image.astype(np.float32).copy()
    crops = list(mask_crops(masks))
    colours = default_palette(len(crops) + 1)[1:]
    for (crop, (top, left)), colour in zip(crops, colours):
        region = canvas[top:top + crop.shape[0], left:left + crop.shape[1]]
        region[crop] = region[crop] * (1 - alpha) + np.asarray(colour, np.float32) * alpha
    canvas = np.ascontiguousarray(canvas.round().clip(0, 255).astype(np.uint8))
    scale = max(min(image.shape[:2]) / 600, 0.3)
    for k, ((crop, (top, left)), label, colour) in enumerate(zip(crops, labels, colours)):
        if not crop.any():
            continue
        contours, _ = cv2.findContours(crop.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE, offset=(left, top))
        cv2.drawContours(canvas, contours, -1, colour, max(1, round(scale * 2)))
        ys, xs = np.nonzero(crop)
        text = class_names[label] if 0 <= label < len(class_names) else str(label)
        text += f" {scores[k]:.2f}" if scores is not None and scores[k] is not None else ""
        (width, height), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        x, y = left + int(xs.min()), max(top + int(ys.min()), height + base)
        cv2.rectangle(canvas, (x, y - height - base), (x + width, y), colour, -1)
        cv2.putText(canvas, text, (x, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def boundary_overlay(image: np.ndarray, labels: np.ndarray, *, colour: Sequence[int] = (255, 255, 0)) -> np.ndarray:
    """``image`` (uint8 [H, W, 3]) with the pixels on region boundaries (those whose right or lower neighbour
    has another label, as the boundary measures count them) painted ``colour``."""
    out = np.array(image, dtype=np.uint8, copy=True)
    out[label_boundaries(labels)] = colour
    return out


def prompt_overlay(image: np.ndarray, mask: np.ndarray, *, points: np.ndarray | None = None, labels: np.ndarray | None = None,
                   boxes: np.ndarray | None = None, alpha: float = 0.45) -> np.ndarray:
    """A mask (``[H, W]`` bool) over ``image`` with its prompts drawn: object points green, background points
    red (white rims), boxes in yellow."""
    import cv2

    canvas = image.astype(np.float32).copy()
    canvas[mask] = canvas[mask] * (1 - alpha) + np.array([30, 144, 255], np.float32) * alpha
    canvas = np.ascontiguousarray(canvas.round().clip(0, 255).astype(np.uint8))
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    scale = max(min(image.shape[:2]) / 400, 1.0)
    cv2.drawContours(canvas, contours, -1, (30, 144, 255), max(1, round(scale)))
    for box in [] if boxes is None else np.asarray(boxes).reshape(-1, 4):
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), (255, 220, 0), max(1, round(scale * 2)))
    for (x, y), label in zip([] if points is None else np.asarray(points).reshape(-1, 2),
                             [] if labels is None else np.asarray(labels).reshape(-1)):
        centre, radius = (int(round(x)), int(round(y))), max(3, round(4 * scale))
        cv2.circle(canvas, centre, radius + 1, (255, 255, 255), -1, cv2.LINE_AA)
        cv2.circle(canvas, centre, radius, (0, 200, 0) if label == 1 else (230, 0, 0), -1, cv2.LINE_AA)
    return canvas
