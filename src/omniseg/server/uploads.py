"""Uploaded images, checked before they are trusted: size in bytes, size in pixels (from the header, before
decoding), and content (decoded in full: a non-image is 415, a broken image 422)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from omniseg.server.settings import ServerSettings


class UploadError(Exception):
    """An upload refused with an HTTP ``status`` and a one-line ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def decode_upload(data: bytes, name: str, settings: ServerSettings) -> np.ndarray:
    """The upload as uint8 ``[H, W, 3]`` RGB, or an :class:`UploadError`."""
    if len(data) > settings.max_upload_bytes:
        raise UploadError(413, f"{name} is {len(data):,} bytes; the limit is {settings.max_upload_bytes:,} (serve --max-upload-mb)")
    if not data:
        raise UploadError(422, f"{name} is empty")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise UploadError(415, f"{name} is not an image Pillow can read (PNG, JPEG, TIFF, BMP, WebP, ...)") from None
    width, height = image.size
    if width * height > settings.max_pixels:
        raise UploadError(413, f"{name} is {width} x {height} = {width * height:,} pixels; the limit is {settings.max_pixels:,}")
    try:
        image.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise UploadError(422, f"{name} could not be decoded ({exc}); the file is truncated or damaged") from None
    return np.array(image.convert("RGB"))
