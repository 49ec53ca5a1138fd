"""Videos read frame by frame, never whole: video files (MP4, MOV, AVI, WebM, ...), folders of frame images and
multi-page TIFF stacks, by index or in order; MP4 files written frame by frame.

Files are decoded by OpenCV, already a dependency, whose wheels carry FFmpeg (H.264, HEVC, VP8/9, AV1 where FFmpeg
has them): no second video library to install. Reading in order decodes each frame once; reading by index seeks (to
the keyframe before it, then decodes forward). A frame is RGB uint8 ``[H, W, 3]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from omniseg.core.atomic import commit, temporary_name
from omniseg.data.imageio import IMAGE_SUFFIXES, TIFF_SUFFIXES, list_image_files, rgb_uint8
from omniseg.errors import DataError


def natural_key(path: Path) -> list:
    """``frame2`` before ``frame10``: digits compared as numbers."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


class VideoFrames(Sequence):
    """The frames of ``source`` (a video file, a folder of images sorted naturally, a multi-page TIFF, or a list of frame
    files), read on
    demand: ``len(frames)``, ``frames[i]``, ``for frame in frames``; ``fps``, ``height``, ``width``. Use it as a
    context manager (or call :meth:`close`) to release the file.

    Example:
        >>> with VideoFrames("clip.mp4") as frames:  # doctest: +SKIP
        ...     first, count = frames[0], len(frames)
    """

    def __init__(self, source: str | Path | Sequence[Path]) -> None:
        listed = not isinstance(source, (str, Path))  # a dataset's video: its frame files, in order
        self.path = Path(source[0]).parent if listed and len(source) else Path(source if not listed else ".")
        self._capture = None
        self._tiff = None
        self._next = 0  # the index the capture decodes next
        if listed or self.path.is_dir():
            self._files = [Path(f) for f in source] if listed else sorted(list_image_files(self.path), key=natural_key)
            if not self._files:
                raise DataError(f"{self.path} holds no frames (looked for {', '.join(IMAGE_SUFFIXES)}); give a video or a frame folder")
            self.kind, self.fps, self._count = "frames", 0.0, len(self._files)
            self.height, self.width = self[0].shape[:2]
        elif not self.path.is_file():
            raise DataError(f"video {self.path} does not exist; give a video file, a frame folder or a TIFF stack")
        elif self.path.suffix.lower() in TIFF_SUFFIXES:
            import tifffile

            try:
                self._tiff = tifffile.TiffFile(self.path)
                self._count = len(self._tiff.pages)
            except (tifffile.TiffFileError, OSError, ValueError) as exc:
                raise DataError(f"{self.path} is not a readable TIFF stack ({exc}); re-export it") from None
            self.kind, self.fps = "tiff", 0.0
            self.height, self.width = self[0].shape[:2]
        else:
            self._capture = cv2.VideoCapture(str(self.path))
            count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT)) if self._capture.isOpened() else 0
            if count <= 0:
                self.close()
                raise DataError(f"video {self.path} cannot be read (not a video OpenCV's FFmpeg decodes, or empty); "
                                "re-encode it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4, or give a frame folder")
            self.kind, self._count = "video", count
            self.fps = float(self._capture.get(cv2.CAP_PROP_FPS)) or 0.0
            self.width, self.height = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT))

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int) -> np.ndarray:
        if not -self._count <= index < self._count:
            raise IndexError(f"frame {index} of {self.path}, which has {self._count} frames (0..{self._count - 1})")
        index %= self._count
        if self.kind == "frames":
            return rgb_uint8(self._files[index])
        if self.kind == "tiff":
            return rgb_uint8(self._tiff.pages[index].asarray())
        if index != self._next:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = self._capture.read()
        if not ok:
            self._next = -1  # the position is unknown after a failed read: seek next time
            raise DataError(f"video {self.path} ends before frame {index} (its header says {self._count} frames): the file is "
                            "truncated or damaged; re-encode it, or cut it to the frames that decode")
        self._next = index + 1
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB, dst=frame)

    def __iter__(self) -> Iterator[np.ndarray]:
        for index in range(self._count):
            yield self[index]

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        if self._tiff is not None:
            self._tiff.close()
            self._tiff = None

    def __enter__(self) -> VideoFrames:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Mp4Writer:
    """An MP4 (MPEG-4 Part 2, which OpenCV's FFmpeg always encodes) written frame by frame under a temporary name
    and renamed when closed, so an interrupted write never leaves a broken file under the final name."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]) -> None:
        self.path, self.size = Path(path), (int(size[0]), int(size[1]))  # (width, height)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._temporary = temporary_name(self.path)
        self._writer = cv2.VideoWriter(str(self._temporary), cv2.VideoWriter_fourcc(*"mp4v"), float(fps or 25.0), self.size)
        if not self._writer.isOpened():
            raise DataError(f"cannot write the video {self.path} (OpenCV has no MPEG-4 encoder here)")
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        """The next RGB uint8 ``[H, W, 3]`` frame (of the writer's size)."""
        if frame.shape[1::-1] != self.size:
            raise ValueError(f"a frame of {frame.shape[1]} x {frame.shape[0]} for a {self.size[0]} x {self.size[1]} video")
        self._writer.write(cv2.cvtColor(np.ascontiguousarray(frame, dtype=np.uint8), cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        self._writer.release()
        commit(self._temporary, self.path)

    def abort(self) -> None:
        self._writer.release()
        self._temporary.unlink(missing_ok=True)

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, kind, *exc) -> None:
        self.abort() if kind is not None else self.close()
