"""YouTube-VOS (video object segmentation): DAVIS-like folders per split with a ``meta.json`` naming each object's
category::

    DATA/train/JPEGImages/<video>/00000.jpg ...
    DATA/train/Annotations/<video>/00000.png ...     indexed PNG, pixel value = object id (every 5th frame)
    DATA/train/meta.json                              {"videos": {<video>: {"objects": {"1": {"category": "cat"}}}}}

The categories become the classes (sorted by name); an object the meta file does not list is refused. Split folders
without annotations past the first frames (the public valid set) still read: only their annotated frames count.
"""

from __future__ import annotations

from pathlib import Path

from omniseg.data.formats.base import read_json, reading
from omniseg.data.formats.davis import read_objects
from omniseg.data.formats.video_objects import TrackedObject, Video, VideoSource, split_name
from omniseg.data.imageio import list_image_files
from omniseg.data.sample import DEFAULT_IGNORE_INDEX, DatasetInfo
from omniseg.data.video import natural_key
from omniseg.errors import DataError


def _split_folders(root: Path) -> list[Path]:
    return [d for d in sorted(root.iterdir()) if d.is_dir() and (d / "meta.json").is_file() and (d / "JPEGImages").is_dir()
            and (d / "Annotations").is_dir()] if root.is_dir() else []


class YouTubeVOSSource(VideoSource):
    """A YouTube-VOS dataset (see the module docstring)."""

    name = "youtube_vos"

    @staticmethod
    def detect(root: Path) -> bool:
        return bool(_split_folders(root))

    def __init__(self, root: str | Path, *, val_fraction: float = 0.2, split_seed: int = 0, frames_per_video: int | None = 50) -> None:
        self.root, self.frames_per_video = Path(root), frames_per_video
        folders = _split_folders(self.root)
        if not folders:
            raise DataError(f"{self.root} has no <split>/ with JPEGImages/, Annotations/ and meta.json (YouTube-VOS layout)")
        self.videos, by_split, categories = {}, {}, {}
        for folder in folders:
            meta_path = folder / "meta.json"
            meta = read_json(meta_path)
            with reading(meta_path):
                described = {name: {int(k): str(v["category"]) for k, v in entry["objects"].items()} for name, entry in meta["videos"].items()}
            for video_dir in sorted(d for d in (folder / "JPEGImages").iterdir() if d.is_dir()):
                frames = sorted(list_image_files(video_dir), key=natural_key)
                annotation_dir = folder / "Annotations" / video_dir.name
                by_stem = {p.stem: p for p in list_image_files(annotation_dir)} if annotation_dir.is_dir() else {}
                annotated = {i: by_stem[f.stem] for i, f in enumerate(frames) if f.stem in by_stem}
                if not annotated:
                    continue
                if video_dir.name not in described:
                    raise DataError(f"{meta_path} does not describe video {video_dir.name}; list its objects and their categories there")
                key = video_dir.name if video_dir.name not in self.videos else f"{folder.name}_{video_dir.name}"
                self.videos[key] = Video(key, frames, sorted(annotated), annotation_files=annotated,
                                         extra={"categories": described[video_dir.name], "meta": meta_path})
                by_split.setdefault(split_name(folder.name), []).append(key)
                categories.update(dict.fromkeys(described[video_dir.name].values()))
        names = sorted(categories)
        self.label_of = {name: k + 1 for k, name in enumerate(names)}
        self.info = DatasetInfo(["background"] + names, things=list(range(1, len(names) + 1)), ignore_index=DEFAULT_IGNORE_INDEX)
        if len(by_split) > 1:
            self.split_videos, how = by_split, "split folders"
        else:
            how = self._split_by_video(val_fraction, split_seed)
        self._finish(how)

    def frame_objects(self, video: Video, index: int, size: tuple[int, int]) -> list[TrackedObject]:
        objects = []
        for obj_id, mask in read_objects(video.annotation_files[index], size).items():
            if obj_id not in video.extra["categories"]:
                raise DataError(f"{video.annotation_files[index]} has object {obj_id}, which {video.extra['meta']} does not list for "
                                f"video {video.name}; add it there with its category")
            objects.append(TrackedObject(obj_id, self.label_of[video.extra["categories"][obj_id]], mask))
        return objects
