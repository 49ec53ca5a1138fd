"""How the classical methods read an image: grey or colour (RGBA taken as RGB), as grey levels or as
values in 0..1."""

from __future__ import annotations

import numpy as np


def image_and_channel_axis(image: np.ndarray) -> tuple[np.ndarray, int | None]:
    """The image (RGBA -> RGB) and its channel axis for scikit-image (None for grey)."""
    image = np.asarray(image)
    if image.ndim == 2:
        return image, None
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return image[..., :3], -1
    raise ValueError(f"expected a grey [H, W] or colour [H, W, 3] image, got shape {image.shape}")


def grey(image: np.ndarray) -> np.ndarray:
    """A float64 grey image from ``[H, W]`` or ``[H, W, 3|4]`` (ITU-R 601 luma of the RGB channels)."""
    values, channel_axis = image_and_channel_axis(image)
    values = values.astype(np.float64)
    return values if channel_axis is None else values @ np.array([0.299, 0.587, 0.114])


def unit_values(image: np.ndarray) -> np.ndarray:
    """The image as float64, uint8 scaled to 0..1 (other types are taken as already in their own units)."""
    image = np.asarray(image)
    return image.astype(np.float64) / (255.0 if image.dtype == np.uint8 else 1.0)
