"""Tracking a video with a trained run, what ``omniseg track RUN VIDEO`` calls.

An instance (or panoptic) run detects every frame and the :class:`~omniseg.inference.tracking.association.Tracker`
joins the detections into tracks; so does a semantic run with ``instances`` (each connected region of a thing class an
object, as ``omniseg predict --instances``); otherwise a semantic run predicts every frame's classes, optionally
smoothed over time (an exponential moving average of the class probabilities). Written to ``out``: ``masks/<frame>.png`` (object ids, or
class ids for a semantic run), ``tracks.json`` (per object and frame: RLE, box, score, class; per frame the class
areas for a semantic run), ``overlay.mp4`` with ids and trails, and ``contact_sheet.png``.

Frames are decoded one at a time and each frame's files are written as it is done; every ``checkpoint_every`` frames
the tracker's state is saved in ``out/state/``, so a killed run started again goes on from there and writes what the
uninterrupted run would have.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from omniseg.core.atomic import write_text, write_with
from omniseg.core.rle import coco_bbox, encode_rle
from omniseg.data.video import VideoFrames
from omniseg.errors import ConfigError
from omniseg.inference.prediction.predictor import Predictor
from omniseg.inference.tracking.association import Tracker, TrackerConfig
from omniseg.inference.tracking.sam2_propagation import Sam2Propagation
from omniseg.inference.tracking.video_output import RunState, write_label_frame, write_overlays

Progress = Callable[[int, int], None]
STATE_FILES = ("tracker.npz", "frames.jsonl")


def track_objects(run: str | Path | Predictor, video: str | Path | list[Path], out: str | Path, *, tracker: TrackerConfig | None = None,
                  smooth: float = 0.0, instances: bool = False, propagate=None, device: str | None = None, progress: Progress | None = None, contact_frames: int = 8,
                  overwrite: bool = False, checkpoint_every: int = 25, max_frames: int | None = None) -> dict:
    """Track every object of ``video`` (a file, a frame folder or a TIFF stack) with the trained ``run`` and write
    ``out`` (see the module docstring); ``max_frames`` stops early. ``propagate``: a Segment Anything 2 model (a
    checkpoint file, a run, or the model) that carries the objects between detections (see
    :mod:`~omniseg.inference.tracking.sam2_propagation`) instead of the Kalman tracker. Returns the summary written to
    tracks.json.

    Example:
        >>> summary = track_objects("runs/demo-video", "street.mp4", "tracked/")  # doctest: +SKIP
        >>> len(summary["objects"])  # doctest: +SKIP
        12
    """
    if not 0 <= smooth < 1:
        raise ConfigError(f"smooth {smooth} is not in [0, 1): the weight of the previous frames' class probabilities")
    out = Path(out)
    config = tracker or TrackerConfig()
    named = str(video) if isinstance(video, (str, Path)) else str(Path(video[0]).parent)  # a list of frame files: their folder
    options = {"tracker": dataclasses.asdict(config), "smooth": smooth, "video": named, "max_frames": max_frames,
               "instances": instances, "propagate": None if propagate is None else str(getattr(propagate, "name", propagate))}
    state = RunState(out, STATE_FILES)
    saved, finished = state.begin(options, overwrite)
    if finished is not None:
        return finished
    state_dir = state.folder
    given = hasattr(run, "predict_instances")  # a Predictor, or one like it
    predictor = run if given else Predictor(run, device=device)
    semantic = predictor.task == "semantic" and not instances
    if predictor.volumetric:
        raise ConfigError(f"{predictor.card.architecture} is a volumetric model; tracking takes a 2D semantic, instance or panoptic run")
    if propagate is not None and semantic:
        raise ConfigError("--propagate carries objects: track a semantic run's regions as objects (--instances), or an instance run")
    sam2 = None if propagate is None else _sam2_model(propagate, device)
    objects: dict[str, dict] = {}
    areas: dict[str, dict] = {}
    previous = None  # the smoothed class probabilities of the last frame (semantic runs)
    start = 0
    names = predictor.info.class_names
    with VideoFrames(video) as frames, open(state_dir / "frames.jsonl", "a") as log:
        associate = Tracker(config) if sam2 is None else Sam2Propagation(sam2, frames, config, device=device)
        if saved is not None:
            start = saved["next"]
            arrays = dict(np.load(state_dir / "tracker.npz", allow_pickle=False))
            if semantic:
                previous = arrays.get("previous")
            else:
                associate.load_state_dict(arrays, saved["tracker"])
            for line in (state_dir / "frames.jsonl").read_text().splitlines():
                _record(json.loads(line), objects, areas)
        total = len(frames) if max_frames is None else min(len(frames), max_frames)
        for index in range(start, total):
            frame = frames[index]
            if semantic:
                probabilities = predictor.predict_proba(frame).numpy()
                previous = probabilities if previous is None or not smooth else (1 - smooth) * probabilities + smooth * previous
                labels = previous.argmax(0)
                entry = {"frame": index, "areas": {names[c]: int(n) for c, n in enumerate(np.bincount(labels.ravel(), minlength=len(names))) if n}}
            else:
                found = predictor.predict_instances(frame, score_threshold=config.low_score)
                detections = (found["masks"], found["boxes"], found["scores"], found["labels"])
                reported = associate.update(*detections) if sam2 is None else associate.update(index, *detections)
                labels = np.zeros(frame.shape[:2], np.int32)
                entry = {"frame": index, "objects": {}}
                for obj in sorted(reported, key=lambda o: o["score"]):  # the surest object on top where two overlap
                    labels[obj["mask"]] = obj["id"]
                for obj in reported:
                    mask = labels == obj["id"]
                    entry["objects"][str(obj["id"])] = {"box": coco_bbox(mask), "area": int(mask.sum()), "score": round(obj["score"], 4),
                                                        "label": obj["label"], "class": names[obj["label"]], "visible": bool(mask.any()),
                                                        "rle": encode_rle(mask)}
            write_label_frame(out / "masks" / f"{index:05d}.png", labels)
            log.write(json.dumps(entry) + "\n")
            log.flush()
            _record(entry, objects, areas)
            if progress is not None:
                progress(index + 1, total)
            if checkpoint_every and (index + 1) % checkpoint_every == 0 and index + 1 < total:
                _save_state(state, associate, previous if semantic else None, options, index + 1)
        fps = frames.fps or 10.0
        size = [frames.height, frames.width]
    summary = {"video": named, "frames": total, "size": size, "fps": fps, "run": predictor.card.architecture if given else str(run),
               "task": predictor.task, "tracker": options["tracker"], "smooth": smooth}
    if semantic:
        summary["areas"] = areas
    else:
        summary["objects"] = {obj_id: {"label": entry["label"], "class": entry["class"],
                                       "frames": dict(sorted(entry["frames"].items(), key=lambda item: int(item[0])))}
                              for obj_id, entry in sorted(objects.items(), key=lambda item: int(item[0]))}
    write_text(out / "tracks.json", json.dumps(summary))
    if semantic:
        write_overlays(video, out, fps=fps, contact_frames=contact_frames, palette=predictor.info.palette, background=None, count=total)
    else:
        write_overlays(video, out, fps=fps, contact_frames=contact_frames, tracks=summary["objects"],
                       names={k: v["class"] for k, v in summary["objects"].items()}, count=total)
    state.clear(remove=True)
    return summary


def _sam2_model(model, device: str | None):
    """The Segment Anything 2 model of a checkpoint file or a promptable run (or the model itself)."""
    from torch import nn

    from omniseg.inference.promptable.prompt_predictor import load_prompt_model
    from omniseg.models.promptable.sam2 import Sam2

    loaded = model if isinstance(model, nn.Module) else getattr(load_prompt_model(model, device=device), "model", None)
    if not isinstance(loaded, Sam2):
        raise ConfigError(f"--propagate sam2 needs a Segment Anything 2 model (sam2.1_hiera_*.pt or a SAM 2 run); {model} is not one")
    return loaded


def _record(entry: dict, objects: dict, areas: dict) -> None:
    """Add one frame's line to the tracks (or the class areas) kept for tracks.json."""
    if "areas" in entry:
        areas[str(entry["frame"])] = entry["areas"]
        return
    for obj_id, values in entry["objects"].items():
        track = objects.setdefault(obj_id, {"label": values["label"], "class": values["class"], "frames": {}})
        track["frames"][str(entry["frame"])] = {k: v for k, v in values.items() if k not in ("label", "class")}


def _save_state(state: RunState, tracker, previous: np.ndarray | None, options: dict, next_frame: int) -> None:
    arrays, described = tracker.state_dict()
    if previous is not None:
        arrays["previous"] = previous

    def save(path: Path) -> None:
        with open(path, "wb") as file:  # a file object: np.savez would add .npz to the temporary name
            np.savez(file, **arrays)

    write_with(state.folder / "tracker.npz", save)
    state.save(options, next=next_frame, tracker=described)
