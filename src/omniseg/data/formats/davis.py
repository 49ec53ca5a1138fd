"""Video object segmentation in the DAVIS layout: a folder of frames per video and an indexed PNG per annotated frame
(pixel value = object id, 0 background, 255 void)::

    DATA/JPEGImages/[480p/]<video>/00000.jpg ...
    DATA/Annotations/[480p/]<video>/00000.png ...
    DATA/ImageSets/2017/train.txt, val.txt       optional: the videos of each split

Every object is class ``object`` (DAVIS has no classes); the same data serve the semi-supervised task (the first
frame's masks given) and the unsupervised one (objects found and matched). Without the ImageSets lists the split is
seeded by video. :func:`write_davis` writes any video dataset in this layout (object ids renumbered 1.. per video).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from omniseg.core.atomic import write_text
from omniseg.data.formats.base import read_text
from omniseg.data.formats.video_objects import TrackedObject, Video, VideoSource
from omniseg.data.formats.voc import voc_palette
from omniseg.data.imageio import list_image_files, read_label_png, write_index_png
from omniseg.data.sample import DEFAULT_IGNORE_INDEX, DatasetInfo
from omniseg.data.video import natural_key
from omniseg.errors import DataError

RESOLUTIONS = ("480p", "Full-Resolution", "")


def _folders(root: Path) -> tuple[Path, Path] | None:
    """``(JPEGImages/<res>, Annotations/<res>)`` of the first resolution the dataset has."""
    for resolution in RESOLUTIONS:
        frames, annotations = root / "JPEGImages" / resolution, root / "Annotations" / resolution
        if frames.is_dir() and annotations.is_dir() and any(d.is_dir() and list_image_files(d) for d in frames.iterdir()):
            return frames, annotations
    return None


def read_objects(path: Path, size: tuple[int, int]) -> dict[int, np.ndarray]:
    """The objects of an indexed annotation PNG: ``{object id: mask [H, W] bool}`` (void 255 and background 0 left out)."""
    raw, mode, _ = read_label_png(path)
    if raw.ndim == 3:
        raise DataError(f"{path} is a {mode} colour image; DAVIS annotations are indexed PNGs (pixel value = object id)")
    if raw.shape != tuple(size):
        raise DataError(f"annotation {path} is {raw.shape[1]}x{raw.shape[0]} but its frame is {size[1]}x{size[0]}")
    ids = [int(v) for v in np.unique(raw) if v not in (0, DEFAULT_IGNORE_INDEX)]
    return {obj_id: raw == obj_id for obj_id in ids}


class DavisSource(VideoSource):
    """A DAVIS-layout video dataset (see the module docstring)."""

    name = "davis"

    @staticmethod
    def detect(root: Path) -> bool:
        return _folders(root) is not None

    def __init__(self, root: str | Path, *, val_fraction: float = 0.2, split_seed: int = 0, frames_per_video: int | None = 50) -> None:
        self.root, self.frames_per_video = Path(root), frames_per_video
        folders = _folders(self.root)
        if folders is None:
            raise DataError(f"{self.root} has no JPEGImages/<video>/ frames beside Annotations/<video>/ (DAVIS layout)")
        frames_dir, annotations_dir = folders
        self.videos = {}
        for folder in sorted(d for d in frames_dir.iterdir() if d.is_dir()):
            frames = sorted(list_image_files(folder), key=natural_key)  # 9.jpg before 10.jpg where names are not padded
            by_stem = {p.stem: p for p in list_image_files(annotations_dir / folder.name)} if (annotations_dir / folder.name).is_dir() else {}
            annotated = {i: by_stem[f.stem] for i, f in enumerate(frames) if f.stem in by_stem}
            stray = sorted(set(by_stem) - {f.stem for f in frames})
            if stray:
                raise DataError(f"annotation {by_stem[stray[0]]} has no frame {stray[0]} in {folder}; name each annotation as its frame")
            if frames and annotated:
                self.videos[folder.name] = Video(folder.name, frames, sorted(annotated), annotation_files=annotated)
        if not self.videos:
            raise DataError(f"{self.root}: no video has both frames ({frames_dir}) and annotations ({annotations_dir})")
        lists = {split: self.root / "ImageSets" / "2017" / f"{split}.txt" for split in ("train", "val")}
        if all(path.is_file() for path in lists.values()):
            names = {split: [n.strip() for n in read_text(path).split() if n.strip()] for split, path in lists.items()}
            for split, listed in names.items():
                missing = [n for n in listed if n not in self.videos]
                if missing:
                    raise DataError(f"{lists[split]} lists video {missing[0]!r}, which has no frames and annotations here")
            self.split_videos = names
            how = "ImageSets/2017 lists"
        else:
            how = self._split_by_video(val_fraction, split_seed)
        self.info = DatasetInfo(["background", "object"], things=[1], ignore_index=DEFAULT_IGNORE_INDEX)
        self._finish(how)

    def frame_objects(self, video: Video, index: int, size: tuple[int, int]) -> list[TrackedObject]:
        return [TrackedObject(obj_id, 1, mask) for obj_id, mask in read_objects(video.annotation_files[index], size).items()]


def write_davis(source: VideoSource, out: Path) -> Path:
    """Any video dataset in the DAVIS layout under ``out``: its frame files copied as they are, each annotated frame
    an indexed PNG (its objects' track ids renumbered 1.. per video, in order of first appearance) and the splits as
    ``ImageSets/2017/<split>.txt``. Classes are not kept (DAVIS has none)."""
    if not isinstance(source, VideoSource):
        raise DataError(f"{source.root} is not a video dataset ({source.description}); DAVIS is written from video formats")
    palette = voc_palette()
    for split in source.splits():
        names = source.split_names(split)
        for name in names:
            video = source.videos[name]
            (out / "JPEGImages" / name).mkdir(parents=True, exist_ok=True)
            (out / "Annotations" / name).mkdir(parents=True, exist_ok=True)
            stems = [f"{i:05d}" for i in range(len(video.frames))]
            for stem, frame in zip(stems, video.frames):
                shutil.copyfile(frame, out / "JPEGImages" / name / f"{stem}{frame.suffix.lower()}")
            numbers: dict[int, int] = {}
            for index in video.annotated:
                masks = source.frame_masks(video, index)
                labels = np.zeros(source.frame_size(video, index), np.uint8)
                for track_id, (_, mask) in sorted(masks.items()):
                    number = numbers.setdefault(track_id, len(numbers) + 1)
                    if number > 254:
                        raise DataError(f"video {name} of {source.root} has more than 254 objects; DAVIS annotations hold 1..254")
                    labels[mask] = number
                write_index_png(out / "Annotations" / name / f"{stems[index]}.png", labels, palette)
        (out / "ImageSets" / "2017").mkdir(parents=True, exist_ok=True)
        write_text(out / "ImageSets" / "2017" / f"{split}.txt", "\n".join(names) + "\n")
    return out
