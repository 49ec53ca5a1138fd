"""The common core of video formats (DAVIS, YouTube-VOS, YouTube-VIS, MOTS, Cell Tracking Challenge): videos of
frames, some annotated, each annotation a set of objects that keep their track id through the video.

A reader fills ``videos`` (name -> :class:`Video`), ``split_videos`` (split -> video names) and ``info``, and says how
to read one frame's objects (:meth:`VideoSource.frame_objects`); the rest is shared: each annotated frame is an
image with instances for the still-image tasks (the train split evenly thinned to ``frames_per_video`` frames a
video, so that long videos' neighbouring, nearly equal frames do not outweigh the others), clips of consecutive
annotated frames for SAM 2's memory, and each annotated frame's objects by track id for tracking metrics. Frames are read when
asked for, never at open.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omniseg.data.formats.objects import AnnotatedObject, ObjectItem, ObjectSource, Segmentation, object_mask
from omniseg.data.formats.paired import seeded_split
from omniseg.data.imageio import read_image
from omniseg.errors import DataError

SPLIT_NAMES = {"train": "train", "training": "train", "valid": "val", "val": "val", "validation": "val", "test": "test"}


@dataclass
class Video:
    """One video: its frames in order, the positions of the annotated ones and, for errors, the file that holds
    the annotation of each (``annotation_files``) or of all (``annotation_file``); ``extra``: the reader's own."""

    name: str
    frames: list[Path]
    annotated: list[int]
    annotation_file: Path | None = None
    annotation_files: dict[int, Path] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def annotation_of(self, index: int) -> Path | None:
        return self.annotation_files.get(index, self.annotation_file)


@dataclass
class TrackedObject:
    """One object on one frame: its track id (unique in the video), class and geometry; ``ignore``: a region no
    metric or loss counts (MOTS's ignore class)."""

    track_id: int
    label: int
    segmentation: Segmentation
    ignore: bool = False


class VideoSource(ObjectSource, metaclass=ABCMeta):
    """Base of video formats (see the module docstring). Subclasses call :meth:`_finish` after filling ``videos``,
    ``split_videos``, ``info`` and ``how`` (how the split was made), and implement :meth:`frame_objects`."""

    videos: dict[str, Video]
    split_videos: dict[str, list[str]]
    frames_per_video: int | None = 50

    @abstractmethod
    def frame_objects(self, video: Video, index: int, size: tuple[int, int]) -> list[TrackedObject]:
        """The objects of annotated frame ``index`` of ``video`` (whose images are ``size``)."""

    def _split_by_video(self, val_fraction: float, split_seed: int) -> str:
        """A seeded split by whole video (neighbouring frames never land in both splits); returns how it was made."""
        self.split_videos = seeded_split(sorted(self.videos), val_fraction, split_seed)
        return "seeded split by video"

    def _finish(self, how: str) -> None:
        if not self.videos:
            raise DataError(f"{self.root}: no video with annotated frames was found ({self.name} layout)")
        self.items = {split: [ObjectItem(self.videos[name].frames[i], annotation=self.videos[name].annotation_of(i),
                                         extra={"video": name, "frame": i, "id": f"{name}_{self.videos[name].frames[i].stem}"})
                              for name in names for i in self._sampled(self.videos[name], split)]
                      for split, names in self.split_videos.items()}
        frames = sum(len(v.annotated) for v in self.videos.values())
        self.description = f"{self.name} videos ({len(self.videos)} videos, {frames} annotated frames, {how})"

    def _sampled(self, video: Video, split: str) -> list[int]:
        """The annotated frames a split's images are: all of them, but evenly thinned to ``frames_per_video`` in train."""
        if split != "train" or not self.frames_per_video or len(video.annotated) <= self.frames_per_video:
            return list(video.annotated)
        picks = np.linspace(0, len(video.annotated) - 1, self.frames_per_video).round().astype(int)
        return [video.annotated[k] for k in sorted(set(picks.tolist()))]

    def load_objects(self, item: ObjectItem, size: tuple[int, int]) -> list[AnnotatedObject]:
        objects = self.frame_objects(self.videos[item.extra["video"]], item.extra["frame"], size)
        return [AnnotatedObject(self.info.ignore_index if o.ignore else o.label, o.segmentation, iscrowd=o.ignore) for o in objects]

    def frame_masks(self, video: str | Video, index: int, size: tuple[int, int] | None = None) -> dict[int, tuple[int, np.ndarray]]:
        """``{track id: (class, mask [H, W] bool)}`` of one annotated frame (ignore regions left out)."""
        video = self.videos[video] if isinstance(video, str) else video
        size = size or self.frame_size(video, index)
        where = video.annotation_of(index) or video.frames[index]
        masks = {}
        for obj in self.frame_objects(video, index, size):
            if obj.ignore:
                continue
            try:
                masks[obj.track_id] = (obj.label, object_mask(obj.segmentation, *size))
            except (ValueError, TypeError) as exc:
                raise DataError(f"{where}: object {obj.track_id} on frame {index} of {video.name} cannot be drawn: {exc}") from None
        return masks

    def frame_size(self, video: Video, index: int) -> tuple[int, int]:
        return self.image_size(ObjectItem(video.frames[index]))

    def split_names(self, split: str) -> list[str]:
        if not self.split_videos.get(split):
            raise DataError(f"{self.root} has no videos in split {split!r}; splits found: {', '.join(self.splits()) or 'none'}")
        return list(self.split_videos[split])

    def clips(self, split: str, length: int, *, step: int = 1) -> ClipDataset:
        """Clips of ``length`` consecutive annotated frames of the ``split``'s videos, starting every ``step`` frames."""
        if length < 2:
            raise DataError(f"a clip needs at least 2 frames, got {length}")
        starts = []
        for name in self.split_names(split):
            annotated = self.videos[name].annotated
            runs = [annotated[i:i + length] for i in range(0, len(annotated) - length + 1, step)]
            starts += [(name, run) for run in runs if run[-1] - run[0] == length - 1]  # consecutive frames only
        if not starts:
            raise DataError(f"no video of split {split!r} in {self.root} has {length} consecutive annotated frames; "
                            "use shorter clips (prompt.clip_frames)")
        return ClipDataset(self, starts)


def split_name(folder: str) -> str:
    """omniseg's name of a split folder (``valid`` -> ``val``)."""
    return SPLIT_NAMES.get(folder.lower(), folder.lower())


class ClipDataset(torch.utils.data.Dataset):
    """``{"frames": uint8 [K, 3, H, W], "masks": bool [K, N, H, W], "ids": [N], "video", "start"}``: the objects are
    those of the clip's first frame (the ones a person prompts there), followed through every frame."""

    def __init__(self, source: VideoSource, clips: list[tuple[str, list[int]]]) -> None:
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
        objects = [self.source.frame_masks(video, i, size) for i in frames]
        ids = sorted(objects[0])
        masks = torch.zeros(len(frames), len(ids), *size, dtype=torch.bool)
        for t, found in enumerate(objects):
            for k, obj_id in enumerate(ids):
                if obj_id in found:
                    masks[t, k] = torch.from_numpy(found[obj_id][1])
        return {"frames": torch.stack(images), "masks": masks, "ids": ids, "video": name, "start": frames[0]}
