"""Arrays as the JSON answers carry them: base64 PNGs and plain Python values."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
from PIL import Image


def png_base64(array: np.ndarray, palette: Sequence[Sequence[int]] | None = None) -> str:
    """An array as a base64 PNG: uint8 (with ``palette``: a palette PNG), uint16, or RGB."""
    image = Image.fromarray(array)
    if palette is not None:
        image.putpalette([v for colour in palette for v in colour][:768])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_png_base64(text: str) -> np.ndarray:
    """A base64 PNG (as :func:`png_base64` writes) as an array."""
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(text))))


def plain(value):
    """numpy values inside ``value`` as JSON-ready Python values."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
