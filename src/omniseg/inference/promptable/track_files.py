"""Tracking a video to files, what ``omniseg track`` calls: objects prompted on any frames followed through the whole
video by Segment Anything 2, written as one indexed PNG a frame (pixel value = object id, DAVIS's palette),
``tracks.json`` (per object and frame: COCO RLE, box, area, visible), an MP4 overlay and a contact sheet.

Frames are decoded as they are tracked and the PNGs written as they come; the overlay is drawn afterwards by reading
the video and the PNGs again, frame by frame, so memory does not grow with the video's length.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from omniseg.core.atomic import write_text, write_with
from omniseg.core.rle import coco_bbox, encode_rle
from omniseg.data.formats.voc import voc_palette
from omniseg.data.imageio import read_label_png, write_index_png
from omniseg.data.video import Mp4Writer, VideoFrames
from omniseg.errors import ConfigError, DataError
from omniseg.inference.promptable.prompt_predictor import PromptPredictor, load_prompt_model
from omniseg.inference.promptable.video_predictor import VideoPredictor
from omniseg.models.promptable.sam2 import Sam2
from omniseg.viz.overlay import overlay

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class VideoPrompt:
    """A prompt of object ``obj_id`` on ``frame``: ``kind`` "point" (x, y, label), "box" (x0, y0, x1, y1) or "mask"
    (a PNG file, nonzero = object)."""

    frame: int
    obj_id: int
    kind: str
    value: tuple | str


def track_video(model, video: str | Path, out: str | Path, prompts: Sequence[VideoPrompt], *, arch: str | None = None,
                device: str | None = None, progress: Progress | None = None, contact_frames: int = 8) -> dict:
    """Follow the prompted objects through ``video`` (a file, a frame folder or a TIFF stack) with the SAM 2 ``model``
    (a run, or a checkpoint file: an official name gives the architecture, else ``arch``) and write ``out``:
    ``masks/<frame>.png``, ``tracks.json``, ``overlay.mp4`` and ``contact_sheet.png``. Frames before the first prompt
    are tracked backwards from it. ``progress(done, total)`` counts frames. Returns the summary written to tracks.json."""
    if not prompts:
        raise ConfigError("give at least one prompt: --point F:X,Y[:ID], --box F:X0,Y0,X1,Y1[:ID] or --mask F:PNG[:ID]")
    predictor = load_prompt_model(model, arch=arch, device=device)
    if not isinstance(predictor, PromptPredictor) or not isinstance(predictor.model, Sam2):
        raise ConfigError(f"tracking needs a Segment Anything 2 model (sam2.1_hiera_*); {model} is not one")
    out = Path(out)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    with VideoFrames(video) as frames:
        tracker = VideoPredictor(predictor.model, device=device).start(frames)
        for prompt in sorted(prompts, key=lambda p: (p.frame, p.obj_id)):
            _apply(tracker, prompt, frames)
        first = min(p.frame for p in prompts)
        tracks: dict[int, dict] = {obj_id: {} for obj_id in tracker.objects}
        total, done = len(frames), 0
        for frame, ids, masks in tracker.propagate(start=first, direction="both"):
            labels = np.zeros((tracker.height, tracker.width), np.uint8)
            for obj_id, mask in zip(ids, masks):  # later objects on top where two overlap
                labels[mask] = obj_id
            for obj_id, mask in zip(ids, masks):
                tracks[obj_id][frame] = {"visible": bool(mask.any()), "area": int(mask.sum()), "box": coco_bbox(mask),
                                         "rle": encode_rle(mask)}
            write_with(out / "masks" / f"{frame:05d}.png", lambda path, labels=labels: write_index_png(path, labels, voc_palette()))
            done += 1
            if progress is not None:
                progress(done, total)
        fps = frames.fps
    summary = {"video": str(video), "frames": total, "size": [tracker.height, tracker.width], "fps": fps,
               "objects": {str(obj_id): {"frames": {str(t): v for t, v in sorted(per_frame.items())}}
                           for obj_id, per_frame in tracks.items()}}
    write_text(out / "tracks.json", json.dumps(summary))
    write_overlays(video, out, fps=fps, contact_frames=contact_frames)
    return summary


def _apply(tracker: VideoPredictor, prompt: VideoPrompt, frames: VideoFrames) -> None:
    if not 0 <= prompt.frame < len(frames):
        raise ConfigError(f"a prompt on frame {prompt.frame}, but {frames.path} has frames 0..{len(frames) - 1}")
    if prompt.kind == "point":
        x, y, label = prompt.value
        tracker.add_prompt(prompt.frame, prompt.obj_id, points=[[x, y]], labels=[label], clear=False)
    elif prompt.kind == "box":
        tracker.add_prompt(prompt.frame, prompt.obj_id, box=list(prompt.value))
    else:
        mask, _, _ = read_label_png(prompt.value)
        mask = np.asarray(mask)
        tracker.add_prompt(prompt.frame, prompt.obj_id, mask=mask.any(-1) if mask.ndim == 3 else mask > 0)


def write_overlays(video: str | Path, out: Path, *, fps: float, contact_frames: int = 8) -> None:
    """``overlay.mp4`` (every frame with its objects painted) and ``contact_sheet.png`` (``contact_frames`` evenly
    spaced overlays), read back from the video and ``masks/`` frame by frame."""
    from PIL import Image

    palette = voc_palette()
    with VideoFrames(video) as frames:
        count = len(frames)
        chosen = set(np.linspace(0, count - 1, min(contact_frames, count)).round().astype(int).tolist())
        sheet = []
        with Mp4Writer(out / "overlay.mp4", fps, (frames.width, frames.height)) as writer:
            for index, frame in enumerate(frames):
                path = out / "masks" / f"{index:05d}.png"
                if not path.is_file():
                    raise DataError(f"{path} is missing: the tracking did not reach frame {index}; run omniseg track again")
                labels, _, _ = read_label_png(path)
                painted = overlay(frame, labels, palette, alpha=0.5, background=0, ignore_index=-1)
                writer.write(painted)
                if index in chosen:
                    thumb = Image.fromarray(painted)
                    thumb.thumbnail((320, 320))
                    sheet.append(np.asarray(thumb))
    columns = min(4, len(sheet))
    rows = -(-len(sheet) // columns)
    height, width = sheet[0].shape[:2]
    canvas = np.full((rows * height, columns * width, 3), 255, np.uint8)
    for k, thumb in enumerate(sheet):
        r, c = divmod(k, columns)
        canvas[r * height: r * height + thumb.shape[0], c * width: c * width + thumb.shape[1]] = thumb
    write_with(out / "contact_sheet.png", lambda path: Image.fromarray(canvas).save(path))
