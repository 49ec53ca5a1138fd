"""Reading images and label masks from disk, with errors that name the file and the fix."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from omniseg.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
TIFF_SUFFIXES = (".tif", ".tiff")

# The most pixels an image may have (Pillow's decompression-bomb limit, 2 x 89,478,485): a larger header is
# refused before anything is decoded or allocated. Raise it (here and PIL.Image.MAX_IMAGE_PIXELS) for huge images.
MAX_IMAGE_PIXELS = 2 * 89_478_485


def list_image_files(directory: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[Path]:
    """The image files directly in ``directory`` (by suffix, hidden files left out), sorted. A folder named like an
    image (``x.png/``) is never taken for one: it is a one-line error naming it."""
    found = []
    for path in sorted(Path(directory).iterdir()):
        if path.name.startswith(".") or not path.name.lower().endswith(suffixes):
            continue
        if path.is_dir():
            raise DataError(f"{path} is a folder named like an image; rename it or move it out of {directory}")
        found.append(path)
    return found


def check_image_size(height: int, width: int, where: str | Path, what: str = "image") -> None:
    """Refuse a (declared or decoded) size that is not positive or exceeds :data:`MAX_IMAGE_PIXELS`;
    ``where`` names the file that says so."""
    if height < 1 or width < 1:
        raise DataError(f"{where}: {what} size {width}x{height} is not positive; fix its width and height")
    if height * width > MAX_IMAGE_PIXELS:
        raise DataError(f"{where}: {what} of {width}x{height} = {height * width:,} pixels is over the limit of "
                        f"{MAX_IMAGE_PIXELS:,} (a decompression bomb or a wrong size); fix the size, or raise "
                        "omniseg.data.imageio.MAX_IMAGE_PIXELS for images this large")


# what Pillow's decoders raise on damaged files besides OSError (struct.error, and plugin bugs on odd headers)
DECODER_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, TypeError, IndexError, KeyError, EOFError,
                  LookupError, ZeroDivisionError, struct.error)


def _open(path: Path, what: str) -> Image.Image:
    try:
        image = Image.open(path)
        check_image_size(image.height, image.width, path, what)  # from the header, before decoding
        image.load()
    except FileNotFoundError:
        raise DataError(f"{what} {path} does not exist; check the path") from None
    except Image.DecompressionBombError as exc:
        raise DataError(f"{what} {path} is refused as a decompression bomb ({exc}); raise "
                        "omniseg.data.imageio.MAX_IMAGE_PIXELS and PIL.Image.MAX_IMAGE_PIXELS for images this large") from None
    except MemoryError:  # the header passed the size check: a chunk declares more data than a sane file holds
        raise DataError(f"{what} {path} could not be decoded in memory; the file is corrupt (or too large for this machine): "
                        "re-export it or remove it") from None
    except DECODER_ERRORS as exc:
        raise DataError(f"{what} {path} is corrupt or not an image ({type(exc).__name__}: {exc}); re-export it or remove it") from None
    return image


def verify_image(path: str | Path, what: str = "image") -> tuple[int, int]:
    """Check that ``path`` decodes; returns its (height, width) after EXIF orientation."""
    image = _open(Path(path), what)
    width, height = image.size
    orientation = image.getexif().get(0x0112, 1)
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)


JPEG_SUFFIXES = (".jpg", ".jpeg")


def read_image(path: str | Path) -> torch.Tensor:
    """An image file as ``[3, H, W]`` RGB, EXIF orientation applied (grey and RGBA converted): uint8, or
    float32 in 0..1 for images of more than 8 bits (16-bit grey PNG and TIFF keep their precision: a 16-bit
    value ``v`` becomes ``v / 65535``; 32-bit integer and float images are scaled from their own range).

    JPEG files are decoded by OpenCV (libjpeg-turbo; it applies the EXIF orientation itself), other files, and
    any OpenCV cannot read, by Pillow. 8-bit images are kept in their pixel-interleaved memory: the tensor is
    ``[3, H, W]`` with channels-last strides, which torchvision's resize and the models' channels-last layout take
    without a copy.
    """
    path = Path(path)
    if path.suffix.lower() in JPEG_SUFFIXES and _header_fits(path):
        pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if pixels is not None:
            cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB, dst=pixels)  # in place: one copy of the image in memory
            return torch.from_numpy(pixels).permute(2, 0, 1)
    image = _open(path, "image")
    if image.getexif().get(0x0112, 1) not in (1, None):  # only a rotated image pays for a transposed copy
        image = ImageOps.exif_transpose(image)
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        array = np.asarray(image, dtype=np.float32)
        if image.mode.startswith("I;16"):
            array = array / 65535
        else:
            lo, hi = float(array.min()), float(array.max())
            array = (array - lo) / max(hi - lo, 1e-12)
        return torch.from_numpy(np.ascontiguousarray(array)).expand(3, *array.shape).contiguous()
    if image.mode != "RGB":
        image = image.convert("RGB")
    array = np.asarray(image)  # read-only, over the decoded bytes
    image.close()  # Pillow's own copy freed before the writable one is made: at most two copies at once
    del image
    return torch.from_numpy(array.copy()).permute(2, 0, 1)  # channels-last strides, as the JPEG path gives


def _header_fits(path: Path) -> bool:
    """Whether the image's header size is within :data:`MAX_IMAGE_PIXELS` (OpenCV would decode before
    checking); an unreadable header is left to Pillow, which names the problem."""
    try:
        with Image.open(path) as image:
            height, width = image.height, image.width
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return False
    check_image_size(height, width, path)
    return True


def pack_rgb(array: np.ndarray) -> np.ndarray:
    """RGB ``[..., 3]`` -> one int64 per colour, ``R << 16 | G << 8 | B`` (a colour becomes a dict key)."""
    array = np.asarray(array, dtype=np.int64)
    return (array[..., 0] << 16) | (array[..., 1] << 8) | array[..., 2]


def read_label_png(path: str | Path) -> tuple[np.ndarray, str, list[tuple[int, int, int]] | None]:
    """The raw content of a label PNG: (array, PIL mode, palette of a 'P' image or None).

    ``array`` is [H, W] for index and palette masks, [H, W, 3] for colour masks.
    """
    image = _open(Path(path), "mask")
    palette = None
    if image.mode == "P":
        flat = image.getpalette() or []
        palette = [tuple(flat[i : i + 3]) for i in range(0, len(flat), 3)]
        return np.asarray(image), "P", palette
    if image.mode in ("RGB", "RGBA"):
        return np.asarray(image.convert("RGB")), "RGB", None
    if image.mode in ("1", "L", "I;16", "I;16B", "I"):
        return np.asarray(image).astype(np.int64), image.mode, None
    raise DataError(f"mask {path} has mode {image.mode}; save masks as 8-bit index, palette or RGB PNGs")


def write_index_png(path: str | Path, mask: np.ndarray, palette: list[tuple[int, int, int]] | None = None) -> None:
    """Write class ids [H, W] as a palette PNG (values must fit in 0..255)."""
    mask = np.asarray(mask)
    if mask.min(initial=0) < 0 or mask.max(initial=0) > 255:
        raise ValueError(f"mask values must be within 0..255 for a palette PNG, got {mask.min()}..{mask.max()}")
    image = Image.fromarray(mask.astype(np.uint8))
    if palette:
        flat = [c for colour in palette for c in colour]
        image.putpalette(flat + [0] * (768 - len(flat)))
    image.save(path)


# Conversions: the one place images change type or layout (paths, PIL, arrays, tensors -> tensors or RGB arrays).

ImageLike = str | Path | np.ndarray | Image.Image | torch.Tensor


def to_image_tensor(image: ImageLike) -> torch.Tensor:
    """A path, PIL image, uint8 ``[H, W, 3]`` / ``[H, W]`` array or uint8 ``[3, H, W]`` tensor as uint8 ``[3, H, W]``."""
    if isinstance(image, (str, Path)):
        return read_image(image)
    if isinstance(image, Image.Image):
        image = np.array(image.convert("RGB"))
    if isinstance(image, np.ndarray):
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] not in (3, 4):
            raise DataError(f"expected an [H, W, 3] image array, got shape {image.shape}")
        rgb = image[..., :3]
        rgb = rgb if rgb.flags.writeable and rgb.flags.c_contiguous else np.array(rgb)  # torch needs a writeable array
        image = torch.from_numpy(rgb).permute(2, 0, 1)
    if not isinstance(image, torch.Tensor) or image.ndim != 3:
        raise DataError(f"expected an image path, PIL image, [H, W, 3] array or [3, H, W] tensor, got {type(image)}")
    return image


def uint8_image(image: torch.Tensor) -> torch.Tensor:
    """An image tensor as uint8: uint8 passes through, floats in 0..1 (high bit depth, as read) are scaled to 0..255."""
    if image.dtype == torch.uint8:
        return image
    return (image.float().clamp(0, 1) * 255).round().to(torch.uint8)


def rgb_uint8(image: ImageLike) -> np.ndarray:
    """Any image (path, PIL, grey or RGB array, ``[3, H, W]`` tensor; 8 or 16 bits, floats in 0..1) as uint8 ``[H, W, 3]``."""
    return np.ascontiguousarray(uint8_image(to_image_tensor(image)).permute(1, 2, 0).numpy())
