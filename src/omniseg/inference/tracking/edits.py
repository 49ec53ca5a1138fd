"""Corrections of a tracked video's output folder (``masks/``, ``tracks.json``), what the page's clicks ask for: the
track under a pixel, two tracks joined into one (an ID switch or a fragment undone), and an object added or redrawn
through the whole video by Segment Anything 2 from one click."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from omniseg.core.atomic import write_text
from omniseg.core.rle import coco_bbox, encode_rle
from omniseg.data.imageio import read_label_png
from omniseg.errors import ConfigError
from omniseg.inference.tracking.video_output import write_label_frame


def _summary(out: Path) -> dict:
    path = out / "tracks.json"
    if not path.is_file():
        raise ConfigError(f"{out} has no tracks.json: the video is not tracked (yet)")
    return json.loads(path.read_text())


def _labels(out: Path, frame: int) -> np.ndarray:
    return np.array(read_label_png(out / "masks" / f"{frame:05d}.png")[0])  # a writable copy


def track_at(out: str | Path, frame: int, x: float, y: float) -> int:
    """The id of the object at pixel (x, y) of ``frame`` (0: none)."""
    labels = _labels(Path(out), frame)
    row, column = int(y), int(x)
    if not (0 <= row < labels.shape[0] and 0 <= column < labels.shape[1]):
        raise ConfigError(f"({x}, {y}) is outside the {labels.shape[1]}x{labels.shape[0]} frame")
    return int(labels[row, column])


def merge_tracks(out: str | Path, source: int, target: int) -> dict:
    """Track ``source`` becomes part of track ``target`` (refused where both are on one frame); returns the summary."""
    out = Path(out)
    summary = _summary(out)
    objects = summary.get("objects", {})
    if str(source) not in objects or str(target) not in objects or source == target:
        raise ConfigError(f"tracks {source} and {target} must be two tracks of this video; it has {', '.join(objects) or 'none'}")
    moving, staying = objects[str(source)]["frames"], objects[str(target)]["frames"]
    shared = sorted(set(moving) & set(staying), key=int)
    if shared:
        raise ConfigError(f"tracks {source} and {target} are both on frame {shared[0]}: they are two objects, not one")
    for frame in moving:
        labels = _labels(out, int(frame))
        labels[labels == source] = target
        write_label_frame(out / "masks" / f"{int(frame):05d}.png", labels)
    staying.update(moving)
    objects[str(target)]["frames"] = dict(sorted(staying.items(), key=lambda item: int(item[0])))
    del objects[str(source)]
    write_text(out / "tracks.json", json.dumps(summary))
    return summary


def follow_click(out: str | Path, frames, model, frame: int, x: float, y: float, *, device: str | None = None) -> tuple[int, dict]:
    """Follow the object clicked at (x, y) on ``frame`` through all of ``frames`` (a sequence of RGB frames) with the
    Segment Anything 2 ``model`` and write it into ``out``: the track under the click is redrawn, or a new track is
    added on top of the others. Returns ``(track id, summary)``."""
    from omniseg.inference.promptable.video_predictor import VideoPredictor

    out = Path(out)
    summary = _summary(out)
    objects = summary.setdefault("objects", {})
    track_id = track_at(out, frame, x, y) or max((int(k) for k in objects), default=0) + 1
    tracker = VideoPredictor(model, device=device).start(frames)
    tracker.add_prompt(frame, track_id, points=[[x, y]], labels=[1])
    followed = {}
    for direction in ("forward", "backward"):
        for index, ids, masks in tracker.propagate(start=frame, direction=direction):
            followed[index] = masks[list(ids).index(track_id)]
    entry = objects.setdefault(str(track_id), {"label": 0, "class": "object", "frames": {}})
    for index, mask in followed.items():
        labels = _labels(out, index)
        labels[labels == track_id] = 0
        labels[mask] = track_id
        write_label_frame(out / "masks" / f"{index:05d}.png", labels)
        if mask.any():
            entry["frames"][str(index)] = {"box": coco_bbox(mask), "area": int(mask.sum()), "score": 1.0, "visible": True,
                                           "rle": encode_rle(mask)}
        else:
            entry["frames"].pop(str(index), None)
    entry["frames"] = dict(sorted(entry["frames"].items(), key=lambda item: int(item[0])))
    write_text(out / "tracks.json", json.dumps(summary))
    return track_id, summary
