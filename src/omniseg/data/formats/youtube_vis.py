"""YouTube-VIS (video instance segmentation): COCO-style video JSON with one annotation per track, its mask on every
frame as RLE (``None`` where the object is not seen)::

    DATA/train/JPEGImages/<video>/00000.jpg ...   + DATA/train/instances.json     (2021, 2022)
    DATA/train/JPEGImages/...                     + DATA/train.json               (2019)

The JSON: ``videos`` (``id``, ``file_names`` relative to JPEGImages, ``height``, ``width``), ``annotations``
(``video_id``, ``category_id``, ``segmentations``, ``iscrowd``) and ``categories``. A split folder without its own
annotations (the public valid set) is left out. :func:`write_youtube_vis` writes any video dataset this way.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from omniseg.core.atomic import write_text
from omniseg.core.rle import coco_bbox, encode_rle
from omniseg.data.formats.base import read_json, reading
from omniseg.data.formats.objects import peek_text
from omniseg.data.formats.video_objects import TrackedObject, Video, VideoSource, split_name
from omniseg.data.sample import DEFAULT_IGNORE_INDEX, DatasetInfo
from omniseg.errors import DataError


def _annotation_files(root: Path) -> dict[str, tuple[Path, Path]]:
    """``{split folder: (json, JPEGImages folder)}`` of the splits that have both."""
    found = {}
    for folder in sorted(d for d in root.iterdir() if d.is_dir()) if root.is_dir() else []:
        for candidate in (folder / "instances.json", root / f"{folder.name}.json"):
            if candidate.is_file() and (folder / "JPEGImages").is_dir() and '"file_names"' in peek_text(candidate, 1 << 16):
                found[folder.name] = (candidate, folder / "JPEGImages")
                break
    return found


class YouTubeVISSource(VideoSource):
    """A YouTube-VIS dataset (see the module docstring)."""

    name = "youtube_vis"

    @staticmethod
    def detect(root: Path) -> bool:
        return bool(_annotation_files(root))

    def __init__(self, root: str | Path, *, val_fraction: float = 0.2, split_seed: int = 0, frames_per_video: int | None = 50) -> None:
        self.root, self.frames_per_video = Path(root), frames_per_video
        files = _annotation_files(self.root)
        if not files:
            raise DataError(f"{self.root} has no <split>/JPEGImages/ with <split>/instances.json or <split>.json (YouTube-VIS layout)")
        self.videos, by_split, categories = {}, {}, None
        for folder, (path, images) in files.items():
            data = read_json(path)
            with reading(path):
                listed = sorted((int(c["id"]), str(c["name"])) for c in data["categories"])
                if categories is not None and listed != categories:
                    raise DataError(f"{path} lists other categories than the other splits' files; give every split the same list")
                categories = listed
                label_of = {cid: k + 1 for k, (cid, _) in enumerate(listed)}
                tracks: dict[int, list] = {}
                for ann in data["annotations"]:
                    if int(ann["category_id"]) not in label_of:
                        raise DataError(f"{path}: annotation {ann.get('id')} has category_id {ann['category_id']}, which categories do not list")
                    tracks.setdefault(int(ann["video_id"]), []).append(ann)
                for video in data["videos"]:
                    frames = [images / name for name in video["file_names"]]
                    anns = tracks.get(int(video["id"]), [])
                    for ann in anns:
                        if len(ann["segmentations"]) != len(frames):
                            raise DataError(f"{path}: annotation {ann.get('id')} has {len(ann['segmentations'])} segmentations for "
                                            f"{len(frames)} frames of video {video['id']}; give one (or null) per frame")
                    name = Path(video["file_names"][0]).parent.name or str(video["id"])
                    name = name if name not in self.videos else f"{folder}_{name}"  # unique over the splits
                    # every frame is annotated: a track's null segmentation says the object is not seen there
                    self.videos[name] = Video(name, frames, list(range(len(frames))), annotation_file=path,
                                              extra={"tracks": [(int(ann.get("id", k + 1)), label_of[int(ann["category_id"])], ann)
                                                                for k, ann in enumerate(anns)],
                                                     "size": (int(video["height"]), int(video["width"]))})
                    by_split.setdefault(split_name(folder), []).append(name)
        self.info = DatasetInfo(["background"] + [n for _, n in categories], things=list(range(1, len(categories) + 1)),
                                ignore_index=DEFAULT_IGNORE_INDEX)
        self.category_ids = [cid for cid, _ in categories]
        if len(by_split) > 1 or (by_split and "train" not in by_split):
            self.split_videos, how = by_split, "split folders"
        else:
            how = self._split_by_video(val_fraction, split_seed)
        self._finish(how)

    def frame_size(self, video: Video, index: int) -> tuple[int, int]:
        return video.extra["size"]

    def frame_objects(self, video: Video, index: int, size: tuple[int, int]) -> list[TrackedObject]:
        if tuple(size) != tuple(video.extra["size"]):
            raise DataError(f"{video.annotation_file} says video {video.name} is {video.extra['size'][1]}x{video.extra['size'][0]} "
                            f"but frame {video.frames[index]} is {size[1]}x{size[0]}; fix the video's width/height or the frames")
        objects = []
        for track_id, label, ann in video.extra["tracks"]:
            segmentation = ann["segmentations"][index]
            if segmentation:
                objects.append(TrackedObject(track_id, label, segmentation, ignore=bool(ann.get("iscrowd", 0))))
        return objects


def write_youtube_vis(source: VideoSource, out: Path) -> Path:
    """Any video dataset in the YouTube-VIS 2021 layout under ``out``: ``<split>/JPEGImages/<video>/`` (the frame
    files copied as they are) and ``<split>/instances.json`` (one annotation per track, RLE on every frame)."""
    if not isinstance(source, VideoSource):
        raise DataError(f"{source.root} is not a video dataset ({source.description}); YouTube-VIS is written from video formats")
    categories = [{"id": k, "name": name} for k, name in enumerate(source.info.class_names) if k in source.info.things]
    folders = {"val": "valid"}
    for split in source.splits():
        videos, annotations = [], []
        for number, name in enumerate(source.split_names(split), start=1):
            video = source.videos[name]
            folder = out / folders.get(split, split) / "JPEGImages" / name
            folder.mkdir(parents=True, exist_ok=True)
            names = []
            for t, frame in enumerate(video.frames):
                target = f"{t:05d}{frame.suffix.lower()}"
                shutil.copyfile(frame, folder / target)
                names.append(f"{name}/{target}")
            height, width = source.frame_size(video, video.annotated[0])
            videos.append({"id": number, "width": width, "height": height, "length": len(names), "file_names": names})
            tracks: dict[int, dict] = {}
            for index in video.annotated:
                for track_id, (label, mask) in source.frame_masks(video, index).items():
                    if label not in source.info.things:
                        continue
                    entry = tracks.setdefault(track_id, {"category_id": label, "segmentations": [None] * len(names),
                                                         "bboxes": [None] * len(names), "areas": [None] * len(names)})
                    entry["segmentations"][index], entry["bboxes"][index], entry["areas"][index] = encode_rle(mask), coco_bbox(mask), int(mask.sum())
            for track_id, entry in sorted(tracks.items()):
                annotations.append({"id": len(annotations) + 1, "video_id": number, "iscrowd": 0, "height": height, "width": width, **entry})
        write_text(out / folders.get(split, split) / "instances.json", json.dumps({"videos": videos, "annotations": annotations,
                                                                                   "categories": categories}))
    return out
