"""Images larger than memory should hold: read band by band, predictions written row by row.

:class:`ImageBands` reads a TIFF or BigTIFF (striped or tiled, any compression tifffile decodes) one band of
rows at a time: memory-mapped when the file is uncompressed and contiguous, else by decoding only the strips or
tiles the band covers (with the last band's segments kept, as sliding windows read overlapping bands). Other
formats are decoded whole: PNG and JPEG decoders have no random access.

:class:`PngRowWriter` writes an 8-bit PNG (class ids with a palette, grey, or RGB) as rows arrive, compressing
them as it goes, and :class:`TiffTileWriter` a tiled TIFF the same way; both under a temporary name renamed when
it is complete.
"""

from __future__ import annotations

import math
import queue
import struct
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tifffile
import torch

from omniseg.core.atomic import commit, temporary_name
from omniseg.data.imageio import TIFF_SUFFIXES, check_image_size, read_image
from omniseg.errors import DataError


class ImageBands:
    """``bands(start, stop)`` -> the image's rows ``[3, stop - start, W]``: uint8, or float32 in 0..1 for 16-bit
    images (as :func:`~omniseg.data.imageio.read_image` gives them). ``height`` and ``width`` are known at once."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._tiff = None
        self._whole: torch.Tensor | None = None
        self._cache: dict[int, tuple[np.ndarray, tuple[int, ...]]] = {}
        if self.path.suffix.lower() in TIFF_SUFFIXES:
            self._open_tiff()
        if self._tiff is None:
            self._whole = read_image(self.path)
            self.height, self.width = int(self._whole.shape[1]), int(self._whole.shape[2])

    def _open_tiff(self) -> None:
        try:
            tif = tifffile.TiffFile(self.path)
            page = tif.pages.first
        except (tifffile.TiffFileError, OSError, ValueError) as exc:
            raise DataError(f"image {self.path} is not a readable TIFF ({exc}); re-export it") from None
        supported = (page.dtype in (np.uint8, np.uint16) and page.samplesperpixel in (1, 3, 4) and page.imagedepth == 1
                     and (page.samplesperpixel == 1 or page.planarconfig == 1))
        if not supported:  # separate colour planes, odd sample types: Pillow reads them whole
            tif.close()
            return
        check_image_size(page.imagelength, page.imagewidth, self.path)
        self._tiff, self._page = tif, page
        self.height, self.width, self.samples = int(page.imagelength), int(page.imagewidth), int(page.samplesperpixel)
        self._memmap = None
        if page.is_memmappable and not page.is_tiled:
            try:  # the file's own pixels, mapped: a band costs what it reads
                self._memmap = tifffile.memmap(self.path, page=0, mode="r")
            except ValueError:
                self._memmap = None
        if page.is_tiled:
            self._segment = (int(page.tilelength), int(page.tilewidth))
        else:
            self._segment = (int(page.rowsperstrip or self.height), self.width)
        self._across = math.ceil(self.width / self._segment[1])

    def close(self) -> None:
        if self._tiff is not None:
            self._tiff.close()

    def __enter__(self) -> ImageBands:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __call__(self, start: int, stop: int) -> torch.Tensor:
        stop = min(stop, self.height)
        if self._whole is not None:
            return self._whole[:, start:stop]
        rows = np.asarray(self._memmap[start:stop]) if self._memmap is not None else self._decode_rows(start, stop)
        return self._as_tensor(rows.reshape(stop - start, self.width, self.samples))

    def _decode_rows(self, start: int, stop: int) -> np.ndarray:
        page, seg_h = self._page, self._segment[0]
        band = np.zeros((stop - start, self.width, self.samples), page.dtype)
        first_row, last_row = start // seg_h, (stop - 1) // seg_h
        wanted = {r * self._across + c for r in range(first_row, last_row + 1) for c in range(self._across)} \
            if page.is_tiled else set(range(first_row, last_row + 1))
        # reads go down the image: segments above this one are done, the rest serve the next (overlapping) read
        self._cache = {k: v for k, v in self._cache.items() if (k // self._across if page.is_tiled else k) >= first_row}
        decode, handle = page.decode, self._tiff.filehandle
        for index in sorted(wanted):
            if index not in self._cache:
                offset, count = page.dataoffsets[index], page.databytecounts[index]
                data = None
                if count:
                    handle.seek(offset)
                    data = handle.read(count)
                try:
                    segment, where, _ = decode(data, index, jpegtables=page.jpegtables)
                except Exception as exc:  # noqa: BLE001 - tifffile and imagecodecs raise their own kinds
                    raise DataError(f"image {self.path}: segment {index} cannot be decoded ({exc}); the file is damaged") from None
                self._cache[index] = (segment, where)
            segment, where = self._cache[index]
            if segment is None:
                continue  # an empty segment reads as zeros
            y, x = int(where[2]), int(where[3])
            pixels = segment.reshape(segment.shape[-3], segment.shape[-2], -1)
            top, bottom = max(y, start), min(y + pixels.shape[0], stop)
            right = min(x + pixels.shape[1], self.width)
            if top < bottom:
                band[top - start:bottom - start, x:right] = pixels[top - y:bottom - y, :right - x, :self.samples]
        return band

    def _as_tensor(self, rows: np.ndarray) -> torch.Tensor:
        rows = rows[..., :3] if rows.shape[-1] >= 3 else np.repeat(rows, 3, axis=-1)
        rows = rows if rows.flags.writeable and rows.flags.c_contiguous else np.array(rows)  # memory maps are read-only
        tensor = torch.from_numpy(rows).permute(2, 0, 1)
        if rows.dtype == np.uint16:
            return tensor.float() / 65535
        return tensor


class RowWriter:
    """The context protocol of a file written as its rows arrive: a subclass's ``close`` renames it into place
    once whole, its ``abort`` drops it; in a ``with`` block, closed on success and aborted on an error."""

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


class PngRowWriter(RowWriter):
    """An 8-bit PNG written as its rows arrive: ``mode`` "P" (class ids, with ``palette``), "L" (grey) or "RGB";
    ``level`` is zlib's compression level (1 is several times faster, for large photographic overlays).

    Example:
        >>> with PngRowWriter("mask.png", 2, 3, palette=[(0, 0, 0), (255, 0, 0)]) as png:  # doctest: +SKIP
        ...     png.write(np.array([[0, 1], [1, 1]], np.uint8)); png.write(np.array([[0, 0]], np.uint8))
    """

    def __init__(self, path: str | Path, width: int, height: int, *, mode: str = "P",
                 palette: Sequence[Sequence[int]] | None = None, level: int = 6) -> None:
        if mode not in ("P", "L", "RGB"):
            raise ValueError(f"mode must be P, L or RGB, got {mode!r}")
        self.path, self.width, self.height, self.mode = Path(path), int(width), int(height), mode
        self.rows = 0
        self._temporary = temporary_name(self.path)
        self._file = open(self._temporary, "wb")
        self._compressor = zlib.compressobj(level)
        colour_type = {"P": 3, "L": 0, "RGB": 2}[mode]
        self._file.write(b"\x89PNG\r\n\x1a\n")
        self._chunk(b"IHDR", struct.pack(">IIBBBBB", self.width, self.height, 8, colour_type, 0, 0, 0))
        if mode == "P":
            colours = [tuple(c) for c in (palette or [])][:256] or [(0, 0, 0)]
            self._chunk(b"PLTE", bytes(v for colour in colours for v in colour))

    def _chunk(self, kind: bytes, data: bytes) -> None:
        self._file.write(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    def write(self, rows: np.ndarray) -> None:
        """The next rows: ``[n, W]`` (P, L) or ``[n, W, 3]`` (RGB), uint8."""
        rows = np.ascontiguousarray(rows, dtype=np.uint8).reshape(len(rows), -1)
        if rows.shape[1] != self.width * (3 if self.mode == "RGB" else 1):
            raise ValueError(f"rows of {rows.shape[1]} values for a {self.width}-pixel-wide {self.mode} PNG")
        if self.rows + len(rows) > self.height:
            raise ValueError(f"{self.rows + len(rows)} rows for a PNG {self.height} rows high")
        filtered = np.concatenate([np.zeros((len(rows), 1), np.uint8), rows], axis=1)  # filter type 0 per row
        data = self._compressor.compress(filtered.tobytes())
        if data:
            self._chunk(b"IDAT", data)
        self.rows += len(rows)

    def close(self) -> None:
        """Finish the file and rename it into place (all its rows must have been written)."""
        if self._file.closed:
            return
        try:
            if self.rows != self.height:
                raise ValueError(f"{self.path}: {self.rows} of {self.height} rows were written")
            self._chunk(b"IDAT", self._compressor.flush())
            self._chunk(b"IEND", b"")
            self._file.close()
            commit(self._temporary, self.path)
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop a file not finished: nothing is left under either name."""
        if not self._file.closed:
            self._file.close()
        self._temporary.unlink(missing_ok=True)


class TiffTileWriter(RowWriter):
    """A tiled TIFF (``tile``-pixel square tiles, zlib; BigTIFF past 4 GB) written as its rows arrive: ``mode``
    "P" (class ids, with ``palette``) or "L" (grey). Rows gather until a row of tiles is complete, which a writer
    thread hands to ``tifffile`` (it pulls tiles in order); the file is written under a temporary name, renamed
    when complete. Same use as :class:`PngRowWriter` (``write``, ``close``, ``abort``)."""

    _END, _ABORT = object(), object()

    def __init__(self, path: str | Path, width: int, height: int, *, mode: str = "P",
                 palette: Sequence[Sequence[int]] | None = None, tile: int = 256) -> None:
        if mode not in ("P", "L"):
            raise ValueError(f"mode must be P or L, got {mode!r}")
        self.path, self.width, self.height, self.tile = Path(path), int(width), int(height), int(tile)
        self.rows = 0
        self._finished = False
        self._pending: list[np.ndarray] = []
        self._temporary = temporary_name(self.path)
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        options: dict = {"photometric": "minisblack"}
        if mode == "P":
            colours = np.zeros((3, 256), np.uint16)
            for index, colour in enumerate(list(palette or [])[:256]):
                colours[:, index] = np.asarray(colour, np.uint16) * 257
            options = {"photometric": "palette", "colormap": colours}
        self._thread = threading.Thread(target=self._run, args=(options,), daemon=True)
        self._thread.start()

    def _tiles(self):
        while (strip := self._queue.get()) is not self._END:
            if strip is self._ABORT:
                raise InterruptedError("aborted")
            for left in range(0, self.width, self.tile):
                piece = np.zeros((self.tile, self.tile), np.uint8)
                part = strip[:, left:left + self.tile]
                piece[:part.shape[0], :part.shape[1]] = part
                yield piece

    def _run(self, options: dict) -> None:
        try:
            tifffile.imwrite(self._temporary, self._tiles(), shape=(self.height, self.width), dtype=np.uint8, tile=(self.tile, self.tile),
                             compression="zlib", bigtiff=self.width * self.height > 2**32 - 2**25, **options)
        except BaseException as exc:  # reported by close()
            self._error = exc

    def _hand_on(self, item) -> None:
        while True:
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    raise OSError(f"cannot write {self.path}: {self._error}") from self._error

    def write(self, rows: np.ndarray) -> None:
        """The next rows ``[n, W]`` (uint8)."""
        rows = np.ascontiguousarray(rows, dtype=np.uint8)
        if rows.ndim != 2 or rows.shape[1] != self.width:
            raise ValueError(f"rows of shape {rows.shape} for a {self.width}-pixel-wide TIFF")
        if self.rows + len(rows) > self.height:
            raise ValueError(f"{self.rows + len(rows)} rows for a TIFF {self.height} rows high")
        self._pending.append(rows)
        self.rows += len(rows)
        gathered = sum(len(r) for r in self._pending)
        while gathered >= self.tile or (self.rows == self.height and gathered):
            strip = np.concatenate(self._pending)
            self._hand_on(strip[:self.tile])
            self._pending = [strip[self.tile:]] if len(strip) > self.tile else []
            gathered = max(len(strip) - self.tile, 0)

    def close(self) -> None:
        """Finish the file and rename it into place (all its rows must have been written)."""
        if self._finished:
            return
        try:
            if self.rows != self.height:
                raise ValueError(f"{self.path}: {self.rows} of {self.height} rows were written")
            self._hand_on(self._END)
            self._thread.join()
            if self._error is not None:
                raise OSError(f"cannot write {self.path}: {self._error}") from self._error
            commit(self._temporary, self.path)
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop a file not finished: nothing is left under either name."""
        self._finished = True
        if self._thread.is_alive():
            try:
                self._hand_on(self._ABORT)
            except OSError:
                pass
            self._thread.join()
        self._temporary.unlink(missing_ok=True)
