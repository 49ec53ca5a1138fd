"""MOTS (multi-object tracking and segmentation): one text file per sequence, a line per object and frame::

    <frame> <object id> <class id> <height> <width> <COCO RLE counts>

with object id = class id x 1000 + instance number, classes 1 (car) and 2 (pedestrian), and class 10 an ignore
region (no loss or metric counts it). Two layouts:

    KITTI-MOTS:     DATA/instances_txt/0000.txt    + DATA/training/image_02/0000/000000.png   (or DATA/images/0000/)
    MOTSChallenge:  DATA/train/MOTS20-02/gt/gt.txt + DATA/train/MOTS20-02/img1/000001.jpg

A line's frame is the image whose file name is that number. The split is seeded by sequence.
"""

from __future__ import annotations

from pathlib import Path

from omniseg.data.formats.base import read_text
from omniseg.data.formats.video_objects import TrackedObject, Video, VideoSource
from omniseg.data.imageio import list_image_files
from omniseg.data.sample import DEFAULT_IGNORE_INDEX, DatasetInfo
from omniseg.data.video import natural_key
from omniseg.errors import DataError

CLASSES = {1: "car", 2: "pedestrian"}
IGNORE_CLASS = 10


def _sequences(root: Path) -> list[tuple[str, Path, Path]]:
    """``(name, annotation txt, frame folder)`` of each sequence of either layout."""
    found = []
    if (root / "instances_txt").is_dir():
        for txt in sorted((root / "instances_txt").glob("*.txt")):
            for frames in (root / "training" / "image_02" / txt.stem, root / "testing" / "image_02" / txt.stem, root / "images" / txt.stem):
                if frames.is_dir():
                    found.append((txt.stem, txt, frames))
                    break
    for split in ("train", "test", "."):
        folder = root / split
        if folder.is_dir():
            for seq in sorted(d for d in folder.iterdir() if d.is_dir()):
                if (seq / "gt" / "gt.txt").is_file() and (seq / "img1").is_dir():
                    found.append((seq.name, seq / "gt" / "gt.txt", seq / "img1"))
    return found


def parse_mots(path: Path) -> dict[int, list[tuple[int, int, dict]]]:
    """``{frame: [(object id, class id, RLE), ...]}`` of one MOTS text file, each line checked."""
    frames: dict[int, list[tuple[int, int, dict]]] = {}
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(" ")
        try:
            frame, obj_id, class_id, height, width = (int(v) for v in parts[:5])
            counts = parts[5]
        except (ValueError, IndexError):
            raise DataError(f"{path} line {number} is not 'frame id class height width rle': {line[:80]!r}") from None
        if len(parts) != 6 or class_id not in (*CLASSES, IGNORE_CLASS):
            raise DataError(f"{path} line {number}: class {class_id} (or {len(parts)} fields); MOTS lines have 6 fields and "
                            f"classes 1 (car), 2 (pedestrian) or 10 (ignore)")
        if class_id != IGNORE_CLASS and obj_id // 1000 != class_id:
            raise DataError(f"{path} line {number}: object id {obj_id} does not start with its class {class_id} "
                            "(MOTS ids are class x 1000 + instance)")
        if any(obj_id == seen for seen, _, _ in frames.get(frame, [])) and class_id != IGNORE_CLASS:
            raise DataError(f"{path} line {number}: object {obj_id} appears twice on frame {frame}")
        frames.setdefault(frame, []).append((obj_id, class_id, {"size": [height, width], "counts": counts}))
    return frames


class MOTSSource(VideoSource):
    """A KITTI-MOTS or MOTSChallenge dataset (see the module docstring)."""

    name = "mots"

    @staticmethod
    def detect(root: Path) -> bool:
        return bool(_sequences(root))

    def __init__(self, root: str | Path, *, val_fraction: float = 0.2, split_seed: int = 0, frames_per_video: int | None = 50) -> None:
        self.root, self.frames_per_video = Path(root), frames_per_video
        sequences = _sequences(self.root)
        if not sequences:
            raise DataError(f"{self.root} has neither instances_txt/<seq>.txt with images nor <split>/<seq>/gt/gt.txt with img1/ (MOTS)")
        self.videos = {}
        for name, txt, folder in sequences:
            frames = sorted(list_image_files(folder), key=natural_key)
            position = {}
            for i, frame in enumerate(frames):
                try:
                    position[int(frame.stem)] = i
                except ValueError:
                    raise DataError(f"frame {frame} of MOTS sequence {name} is not named by its number (000001.jpg)") from None
            lines = parse_mots(txt)
            missing = sorted(set(lines) - set(position))
            if missing:
                raise DataError(f"{txt} annotates frame {missing[0]}, but {folder} has no image numbered {missing[0]}")
            # every frame of an annotated sequence is annotated: a frame without lines has no object
            self.videos[name] = Video(name, frames, list(range(len(frames))), annotation_file=txt,
                                      extra={"lines": {position[f]: objects for f, objects in lines.items()}})
        self.info = DatasetInfo(["background", *CLASSES.values()], things=[1, 2], ignore_index=DEFAULT_IGNORE_INDEX)
        self._finish(self._split_by_video(val_fraction, split_seed))

    def frame_objects(self, video: Video, index: int, size: tuple[int, int]) -> list[TrackedObject]:
        objects = []
        for obj_id, class_id, rle in video.extra["lines"].get(index, []):
            if tuple(rle["size"]) != tuple(size):
                raise DataError(f"{video.annotation_file}: object {obj_id} on frame {video.frames[index].name} is {rle['size'][1]}x"
                                f"{rle['size'][0]} but the image is {size[1]}x{size[0]}")
            objects.append(TrackedObject(obj_id, class_id if class_id != IGNORE_CLASS else 0, rle, ignore=class_id == IGNORE_CLASS))
        return objects
