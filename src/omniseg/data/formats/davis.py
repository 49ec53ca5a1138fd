"""Video object segmentation in the DAVIS layout: a folder of frames per video and an indexed PNG per annotated frame
(pixel value = object id, 0 background, 255 void)::

    DATA/JPEGImages/[480p/]<video>/00000.jpg ...
    DATA/Annotations/[480p/]<video>/00000.png ...
    DATA/ImageSets/2017/train.txt, val.txt       optional: the videos of each split

Each annotated frame is an image with instances (every object is class ``object``), so instance and promptable
training read it as any object dataset; :meth:`DavisSource.clips` gives clips of consecutive annotated frames with
each object's mask through the clip, for training what follows objects through time (SAM 2's memory). Without the
ImageSets lists the split is seeded by video, so neighbouring frames of one video never land in both splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from omniseg.data.formats.base import read_text
from omniseg.data.formats.objects import AnnotatedObject, ObjectItem, ObjectSource
from omniseg.data.formats.paired import seeded_split
from omniseg.data.imageio import list_image_files, read_image, read_label_png
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


@dataclass
class Video:
    """One video: its frames in order and the annotation of each annotated frame (by position in ``frames``)."""

    name: str
    frames: list[Path]
    annotations: dict[int, Path]


def read_objects(path: Path, size: tuple[int, int]) -> dict[int, np.ndarray]:
    """The objects of an indexed annotation PNG: ``{object id: mask [H, W] bool}`` (void 255 and background 0 left out)."""
    raw, mode, _ = read_label_png(path)
    if raw.ndim == 3:
        raise DataError(f"{path} is a {mode} colour image; DAVIS annotations are indexed PNGs (pixel value = object id)")
    if raw.shape != tuple(size):
        raise DataError(f"annotation {path} is {raw.shape[1]}x{raw.shape[0]} but its frame is {size[1]}x{size[0]}")
    ids = [int(v) for v in np.unique(raw) if v not in (0, DEFAULT_IGNORE_INDEX)]
    return {obj_id: raw == obj_id for obj_id in ids}


class DavisSource(ObjectSource):
    """A DAVIS-layout video dataset (see the module docstring)."""

    name = "davis"

    @staticmethod
    def detect(root: Path) -> bool:
        return _folders(root) is not None

    def __init__(self, root: str | Path, *, val_fraction: float = 0.2, split_seed: int = 0) -> None:
        self.root = Path(root)
        folders = _folders(self.root)
        if folders is None:
            raise DataError(f"{self.root} has no JPEGImages/<video>/ frames beside Annotations/<video>/ (DAVIS layout)")
        frames_dir, annotations_dir = folders
        self.videos: dict[str, Video] = {}
        for folder in sorted(d for d in frames_dir.iterdir() if d.is_dir()):
            frames = sorted(list_image_files(folder), key=natural_key)  # 9.jpg before 10.jpg where names are not padded
            by_stem = {p.stem: p for p in list_image_files(annotations_dir / folder.name)} if (annotations_dir / folder.name).is_dir() else {}
            annotated = {i: by_stem[f.stem] for i, f in enumerate(frames) if f.stem in by_stem}
            stray = sorted(set(by_stem) - {f.stem for f in frames})
            if stray:
                raise DataError(f"annotation {by_stem[stray[0]]} has no frame {stray[0]} in {folder}; name each annotation as its frame")
            if frames and annotated:
                self.videos[folder.name] = Video(folder.name, frames, annotated)
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
            self.split_videos = seeded_split(sorted(self.videos), val_fraction, split_seed)
            how = "seeded split by video"
        self.info = DatasetInfo(["background", "object"], things=[1], ignore_index=DEFAULT_IGNORE_INDEX)
        self.items = {split: [ObjectItem(video.frames[i], annotation=path, extra={"video": name, "frame": i})
                              for name in names for video in [self.videos[name]] for i, path in sorted(video.annotations.items())]
                      for split, names in self.split_videos.items()}
        frames = sum(len(v.annotations) for v in self.videos.values())
        self.description = f"davis videos ({len(self.videos)} videos, {frames} annotated frames, {how})"

    def load_objects(self, item: ObjectItem, size: tuple[int, int]) -> list[AnnotatedObject]:
        return [AnnotatedObject(1, mask) for mask in read_objects(item.annotation, size).values()]

    def clips(self, split: str, length: int, *, step: int = 1) -> ClipDataset:
        """Clips of ``length`` consecutive annotated frames of the ``split``'s videos, starting every ``step`` frames."""
        if length < 2:
            raise DataError(f"a clip needs at least 2 frames, got {length}")
        if not self.split_videos.get(split):
            raise DataError(f"{self.root} has no videos in split {split!r}; splits found: {', '.join(self.splits()) or 'none'}")
        starts = []
        for name in self.split_videos[split]:
            annotated = sorted(self.videos[name].annotations)
            runs = [annotated[i:i + length] for i in range(0, len(annotated) - length + 1, step)]
            starts += [(name, run) for run in runs if run[-1] - run[0] == length - 1]  # consecutive frames only
        if not starts:
            raise DataError(f"no video of split {split!r} in {self.root} has {length} consecutive annotated frames; "
                            "use shorter clips (prompt.clip_frames)")
        return ClipDataset(self, starts)


class ClipDataset(torch.utils.data.Dataset):
    """``{"frames": uint8 [K, 3, H, W], "masks": bool [K, N, H, W], "ids": [N], "video", "start"}``: the objects are
    those of the clip's first frame (the ones a person prompts there), followed through every frame."""

    def __init__(self, source: DavisSource, clips: list[tuple[str, list[int]]]) -> None:
        self.source, self.clips = source, clips

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict:
        name, frames = self.clips[index]
        video = self.source.videos[name]
        images = [read_image(video.frames[i]) for i in frames]
        size = tuple(images[0].shape[-2:])
        for i, image in zip(frames, images):
            if image.shape[0] != 3 or tuple(image.shape[-2:]) != size:
                raise DataError(f"frame {video.frames[i]} is {tuple(image.shape)}; the clip's frames are RGB {size[1]}x{size[0]}")
        objects = [read_objects(video.annotations[i], size) for i in frames]
        ids = sorted(objects[0])
        masks = torch.zeros(len(frames), len(ids), *size, dtype=torch.bool)
        for t, found in enumerate(objects):
            for k, obj_id in enumerate(ids):
                if obj_id in found:
                    masks[t, k] = torch.from_numpy(found[obj_id])
        return {"frames": torch.stack(images), "masks": masks, "ids": ids, "video": name, "start": frames[0]}
