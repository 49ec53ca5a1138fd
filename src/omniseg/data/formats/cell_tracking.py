"""The Cell Tracking Challenge layout: frames as TIFFs (8- or 16-bit), each tracking annotation a 16-bit TIFF whose
pixel value is the cell's track id, and the lineage in ``man_track.txt``::

    DATA/01/t000.tif ...
    DATA/01_GT/TRA/man_track000.tif ...     16-bit, pixel value = track id (0 background)
    DATA/01_GT/TRA/man_track.txt            one line a track: L B E P (id, first frame, last frame, parent id or 0)

Every cell is class ``cell``; a track whose cell divides ends, and its daughters name it as parent (the lineage is
kept in ``lineage``). A mask value the lineage does not list, or one outside its frames, is refused: the file and
the value are named. (Some datasets' TRA masks are markers rather than whole cells; their SEG folders hold whole
cells on some frames, without track ids.)
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from omniseg.data.formats.base import read_text
from omniseg.data.formats.video_objects import TrackedObject, Video, VideoSource
from omniseg.data.sample import DEFAULT_IGNORE_INDEX, DatasetInfo
from omniseg.errors import DataError

NUMBER = re.compile(r"(\d+)$")


def _sequences(root: Path) -> list[tuple[str, Path, Path]]:
    """``(name, frame folder, TRA folder)`` of each sequence with its ``<name>_GT/TRA/man_track.txt``."""
    if not root.is_dir():
        return []
    return [(d.name, d, root / f"{d.name}_GT" / "TRA") for d in sorted(root.iterdir())
            if d.is_dir() and re.fullmatch(r"\d+", d.name) and (root / f"{d.name}_GT" / "TRA" / "man_track.txt").is_file()]


def _numbered(folder: Path, prefix: str) -> dict[int, Path]:
    found = {}
    for path in folder.glob(f"{prefix}*.tif*"):
        match = NUMBER.search(path.stem)
        if match and path.stem[:match.start()] == prefix:
            found[int(match.group(1))] = path
    return found


def read_lineage(path: Path) -> dict[int, tuple[int, int, int]]:
    """``{track id: (first frame, last frame, parent id or 0)}`` of a ``man_track.txt``."""
    lineage = {}
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            label, begin, end, parent = (int(v) for v in line.split())
        except ValueError:
            raise DataError(f"{path} line {number} is not four integers 'L B E P': {line[:80]!r}") from None
        if label <= 0 or begin > end or label in lineage:
            raise DataError(f"{path} line {number}: track {label} from frame {begin} to {end} (ids are positive, unique, begin <= end)")
        lineage[label] = (begin, end, parent)
    for label, (begin, _, parent) in lineage.items():
        if parent and parent not in lineage:
            raise DataError(f"{path}: track {label} names parent {parent}, which has no line; add it or set the parent to 0")
    return lineage


def read_label_tiff(path: Path) -> np.ndarray:
    import tifffile

    try:
        labels = tifffile.imread(path)
    except Exception as exc:  # tifffile raises its own and ValueErrors for broken files
        raise DataError(f"{path} cannot be read as a TIFF ({str(exc)[:120]}); export it again") from None
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path} is {labels.dtype} {labels.shape}; tracking masks are 2D integer images (pixel value = track id)")
    return labels


class CellTrackingSource(VideoSource):
    """A Cell Tracking Challenge dataset (see the module docstring)."""

    name = "cell_tracking"

    @staticmethod
    def detect(root: Path) -> bool:
        return bool(_sequences(root))

    def __init__(self, root: str | Path, *, val_fraction: float = 0.2, split_seed: int = 0, frames_per_video: int | None = 50) -> None:
        self.root, self.frames_per_video = Path(root), frames_per_video
        sequences = _sequences(self.root)
        if not sequences:
            raise DataError(f"{self.root} has no <NN>/t*.tif with <NN>_GT/TRA/man_track.txt (Cell Tracking Challenge layout)")
        self.videos, self.lineage = {}, {}
        for name, frames_dir, tracking_dir in sequences:
            frames = _numbered(frames_dir, "t")
            masks = _numbered(tracking_dir, "man_track")
            if not frames:
                raise DataError(f"{frames_dir} has no t<number>.tif frames")
            stray = sorted(set(masks) - set(frames))
            if stray:
                raise DataError(f"{masks[stray[0]]} has no frame t{stray[0]:03d}.tif in {frames_dir}")
            order = sorted(frames)
            position = {number: i for i, number in enumerate(order)}
            self.lineage[name] = read_lineage(tracking_dir / "man_track.txt")
            self.videos[name] = Video(name, [frames[n] for n in order], sorted(position[n] for n in masks),
                                      annotation_files={position[n]: path for n, path in masks.items()},
                                      extra={"numbers": order})
        self.info = DatasetInfo(["background", "cell"], things=[1], ignore_index=DEFAULT_IGNORE_INDEX)
        self._finish(self._split_by_video(val_fraction, split_seed))

    def frame_objects(self, video: Video, index: int, size: tuple[int, int]) -> list[TrackedObject]:
        path = video.annotation_files[index]
        labels = read_label_tiff(path)
        if labels.shape != tuple(size):
            raise DataError(f"{path} is {labels.shape[1]}x{labels.shape[0]} but its frame is {size[1]}x{size[0]}")
        lineage, number = self.lineage[video.name], video.extra["numbers"][index]
        objects = []
        for value in np.unique(labels):
            if value == 0:
                continue
            if int(value) not in lineage or not lineage[int(value)][0] <= number <= lineage[int(value)][1]:
                span = lineage.get(int(value))
                raise DataError(f"{path} holds track {int(value)} on frame {number}, but man_track.txt "
                                + (f"gives it frames {span[0]}..{span[1]}" if span else "does not list it") + "; fix one of them")
            objects.append(TrackedObject(int(value), 1, labels == value))
        return objects
