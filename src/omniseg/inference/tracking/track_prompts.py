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
from omniseg.data.video import VideoFrames
from omniseg.errors import ConfigError
from omniseg.inference.promptable.prompt_predictor import PromptPredictor, load_prompt_model
from omniseg.inference.promptable.video_predictor import VideoPredictor
from omniseg.models.promptable.sam2 import Sam2
from omniseg.inference.tracking.video_output import RunState, write_overlays

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
                device: str | None = None, progress: Progress | None = None, contact_frames: int = 8, overwrite: bool = False,
                checkpoint_every: int = 10) -> dict:
    """Follow the prompted objects through ``video`` (a file, a frame folder or a TIFF stack) with the SAM 2 ``model``
    (a run, or a checkpoint file: an official name gives the architecture, else ``arch``) and write ``out``:
    ``masks/<frame>.png``, ``tracks.json``, ``overlay.mp4`` and ``contact_sheet.png``. Frames before the first prompt
    are tracked backwards from it. ``progress(done, total)`` counts frames.

    Resumable: every ``checkpoint_every`` frames the tracker's state (what later frames read) is saved in
    ``out/state/``, so a killed run started again with the same prompts goes on from there and writes what the
    uninterrupted run would have; a finished ``out`` is left as it is unless ``overwrite``. Returns the summary
    written to tracks.json."""
    if not prompts:
        raise ConfigError("give at least one prompt: --point F:X,Y[:ID], --box F:X0,Y0,X1,Y1[:ID] or --mask F:PNG[:ID]")
    kinds: dict[tuple[int, int], list[str]] = {}
    for prompt in prompts:
        kinds.setdefault((prompt.frame, prompt.obj_id), []).append(prompt.kind)
    for (frame, obj_id), given in kinds.items():  # one object's prompts on one frame must say one thing
        if ("mask" in given and len(given) > 1) or given.count("box") > 1:
            raise ConfigError(f"object {obj_id} has {' and '.join(sorted(given))} prompts on frame {frame}, which contradict each other; "
                              "give it one mask, or one box with clicks, on a frame (or another object id)")
    out = Path(out)
    described = [[p.frame, p.obj_id, p.kind, list(p.value) if isinstance(p.value, tuple) else str(p.value)] for p in prompts]
    state = RunState(out, STATE_FILES)
    saved, finished = state.begin({"prompts": described}, overwrite)
    if finished is not None:
        return finished
    state_dir = state.folder
    predictor = load_prompt_model(model, arch=arch, device=device)
    if not isinstance(predictor, PromptPredictor) or not isinstance(predictor.model, Sam2):
        raise ConfigError(f"tracking needs a Segment Anything 2 model (sam2.1_hiera_*); {model} is not one")
    palette = voc_palette()
    with VideoFrames(video) as frames, open(state_dir / "tracks.jsonl", "a") as log:
        tracker = VideoPredictor(predictor.model, device=device).start(frames)
        for prompt in sorted(prompts, key=lambda p: (p.frame, p.obj_id)):
            _apply(tracker, prompt, frames)
        first = min(p.frame for p in prompts)
        passes = [("forward", first)] + ([("backward", first)] if first > 0 else [])
        tracks: dict[str, dict] = {str(obj_id): {} for obj_id in tracker.objects}
        if saved is not None:  # go on from the last checkpoint
            from safetensors.torch import load_file

            tracker.load_state_dict(load_file(str(state_dir / "tracker.safetensors")), saved["tracker"])
            index = [name for name, _ in passes].index(saved["pass"])
            passes = [(saved["pass"], saved["next"])] + passes[index + 1:]
            for line in (state_dir / "tracks.jsonl").read_text().splitlines():  # frames redone since overwrite their lines
                entry = json.loads(line)
                for obj_id, values in entry["objects"].items():
                    tracks[obj_id][str(entry["frame"])] = values
        total = len(frames)
        for number, (direction, start) in enumerate(passes):
            for frame, ids, masks in tracker.propagate(start=start, direction=direction):
                labels = np.zeros((tracker.height, tracker.width), np.uint8)
                written = {}
                for obj_id, mask in zip(ids, masks):  # later objects on top where two overlap
                    labels[mask] = obj_id
                    written[str(obj_id)] = {"visible": bool(mask.any()), "area": int(mask.sum()), "box": coco_bbox(mask),
                                            "rle": encode_rle(mask)}
                    tracks[str(obj_id)][str(frame)] = written[str(obj_id)]
                write_with(out / "masks" / f"{frame:05d}.png", lambda path, labels=labels: write_index_png(path, labels, palette))
                log.write(json.dumps({"frame": frame, "objects": written}) + "\n")  # appended: a checkpoint rewrites no track
                log.flush()
                if progress is not None:  # frames written so far (the backward pass starts on one already written)
                    progress(len(next(iter(tracks.values()))), total)
                step = 1 if direction == "forward" else -1
                ended = frame + step < 0 or frame + step >= total
                if checkpoint_every and (frame - start) % checkpoint_every == checkpoint_every - 1 and not ended:
                    _save_state(state, tracker, described, direction, frame + step)
            if number + 1 < len(passes):
                _save_state(state, tracker, described, passes[number + 1][0], passes[number + 1][1])
        fps = frames.fps
    summary = {"video": str(video), "frames": total, "size": [tracker.height, tracker.width], "fps": fps,
               "objects": {obj_id: {"frames": dict(sorted(per_frame.items(), key=lambda item: int(item[0])))}
                           for obj_id, per_frame in tracks.items()}}
    write_text(out / "tracks.json", json.dumps(summary))
    write_overlays(video, out, fps=fps, contact_frames=contact_frames, tracks=summary["objects"])
    state.clear(remove=True)  # the folder too, when nothing but our files was in it
    return summary


STATE_FILES = ("tracker.safetensors", "tracks.jsonl")


def _save_state(state: RunState, tracker: VideoPredictor, prompts: list, direction: str, next_frame: int) -> None:
    """The tracker's state, for a resumed run to go on from ``next_frame`` of the ``direction`` pass (the tracks so far
    are in ``tracks.jsonl``, appended frame by frame)."""
    from safetensors.torch import save_file

    tensors, description = tracker.state_dict()
    write_with(state.folder / "tracker.safetensors", lambda path: save_file(tensors, str(path)))
    state.save({"prompts": prompts}, **{"pass": direction, "next": next_frame, "tracker": description})


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
