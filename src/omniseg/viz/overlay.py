"""Colouring label maps and blending them over images."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def colorize(mask: np.ndarray, palette: Sequence[Sequence[int]], *, ignore_index: int = 255) -> np.ndarray:
    """Class ids [H, W] -> RGB uint8 [H, W, 3]; ignored and unknown ids are white."""
    lut = np.full((max(len(palette), ignore_index + 1, int(mask.max(initial=0)) + 1), 3), 255, np.uint8)
    lut[: len(palette)] = np.asarray(palette, np.uint8)
    lut[ignore_index] = 255
    return lut[np.asarray(mask, np.int64)]


def overlay(image: np.ndarray, mask: np.ndarray, palette: Sequence[Sequence[int]], *, alpha: float = 0.5,
            ignore_index: int = 255, background: int | None = 0) -> np.ndarray:
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
