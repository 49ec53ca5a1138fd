"""Video evaluation: tracked objects against a video dataset's truth tracks, what ``omniseg eval --task video`` calls.

The predictions are a run (each video of the split is tracked first, into ``out/<video>/``) or a folder of them: per
video ``<video>/masks/<frame>.png`` (what ``omniseg track`` writes) or ``<video>/<frame>.png`` (DAVIS's results
layout), pixel value = object id, named by the frame's position (``00000.png``) or the frame file's own name.

Measured over the annotated frames, every truth object (all classes together; ignore regions left out): HOTA
(DetA, AssA, LocA), CLEAR (MOTSA, sMOTSA, ID switches, fragmentations, mostly tracked / lost), IDF1, and DAVIS's
J&F with each truth object matched to one predicted track per video (the unsupervised protocol). Per video too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from omniseg.core.atomic import write_text
from omniseg.data.formats import load_dataset
from omniseg.data.formats.video_objects import Video, VideoSource
from omniseg.data.imageio import read_label_png
from omniseg.errors import ConfigError, DataError
from omniseg.metrics.tracking import TrackSequence, clear_counts, clear_scores, hota_counts, hota_scores, identity_counts, identity_scores
from omniseg.metrics.video_objects import VideoObjectScores, video_object_scores

Progress = Callable[[int, int], None]
SUMMARY = ("HOTA", "DetA", "AssA", "LocA", "MOTA", "sMOTA", "IDF1", "IDSW", "Frag", "J&F")


def _prediction_file(folder: Path, video: Video, index: int) -> Path:
    for base in (folder / video.name / "masks", folder / video.name):
        for name in (f"{index:05d}.png", f"{video.frames[index].stem}.png"):
            if (base / name).is_file():
                return base / name
    raise DataError(f"{folder} has no prediction for frame {index} of video {video.name} (looked for {video.name}/masks/{index:05d}.png "
                    f"and {video.name}/{video.frames[index].stem}.png); track the video again or check the folder")


def score_video(source: VideoSource, video: Video, predictions: Path) -> tuple[TrackSequence, VideoObjectScores]:
    """One video's tracking sequence and J&F objects from its predicted label PNGs."""
    sequence, objects = TrackSequence(), VideoObjectScores(match="assignment")
    for index in video.annotated:
        truth = source.frame_masks(video, index)
        path = _prediction_file(predictions, video, index)
        predicted, _, _ = read_label_png(path)
        if predicted.ndim == 3:
            raise DataError(f"{path} is a colour image; predictions are label PNGs (pixel value = object id)")
        size = next(iter(truth.values()))[1].shape if truth else predicted.shape
        if predicted.shape != size:
            raise DataError(f"{path} is {predicted.shape[1]}x{predicted.shape[0]} but frame {index} of {video.name} is {size[1]}x{size[0]}")
        ids = [int(i) for i in np.unique(predicted) if i != 0]
        truth_ids = sorted(truth)
        truth_masks = np.stack([truth[t][1] for t in truth_ids]) if truth_ids else np.zeros((0, *predicted.shape), bool)
        masks = np.stack([predicted == i for i in ids]) if ids else np.zeros((0, *predicted.shape), bool)
        sequence.add_masks(truth_ids, truth_masks, ids, masks)
        objects.add_masks(dict(zip(truth_ids, truth_masks)), dict(zip(ids, masks)))
    return sequence, objects


def video_report(sequences: dict[str, tuple[TrackSequence, VideoObjectScores]]) -> dict:
    """The report of several videos: overall HOTA / CLEAR / identity / J&F, and the summary per video (each video's
    counts computed once, then combined)."""
    names = list(sequences)
    counts = {name: (hota_counts(sequence), clear_counts(sequence), identity_counts(sequence)) for name, (sequence, _) in sequences.items()}
    hota = hota_scores(counts[n][0] for n in names)
    report = {"task": "video", "videos_count": len(names)}
    report |= {k: v for k, v in hota.items() if k != "curves"}
    report |= clear_scores(counts[n][1] for n in names)
    report |= identity_scores(counts[n][2] for n in names)
    report |= video_object_scores([sequences[n][1] for n in names])
    report["MOTSA"], report["sMOTSA"] = report["MOTA"], report["sMOTA"]  # on masks, CLEAR's MOTA is MOTSA
    report["hota_curves"] = hota["curves"]
    per_video = {}
    for name in names:
        hota_one, clear_one, identity_one = counts[name]
        one = hota_scores([hota_one]) | clear_scores([clear_one]) | identity_scores([identity_one])
        objects = sequences[name][1]
        one |= video_object_scores([objects]) if objects.truth_ids() else {"J&F": float("nan")}
        per_video[name] = {k: one[k] for k in SUMMARY}
    report["videos"] = per_video
    return report


def evaluate_video(predictions: str | Path, data: str | Path, *, split: str = "val", format: str = "auto", out: str | Path | None = None,
                   device: str | None = None, tracker=None, progress: Progress | None = None) -> dict:
    """Evaluate a run (tracked into ``out``, default ``<run>/tracks_<split>/``) or a folder of predicted videos on the
    ``split`` of the video dataset ``data``; the report (see :func:`video_report`) is also written as
    ``video_metrics.json`` in the predictions' folder."""
    source = load_dataset(data, format=format)
    if not isinstance(source, VideoSource):
        raise ConfigError(f"{data} is not a video dataset ({source.description}); video evaluation reads DAVIS, YouTube-VOS, "
                          "YouTube-VIS, MOTS or Cell Tracking Challenge data")
    names = source.split_names(split)
    predictions = Path(predictions)
    if (predictions / "model.json").is_file():
        from omniseg.inference.prediction.predictor import Predictor
        from omniseg.inference.tracking.track_detections import track_objects

        predictor = Predictor(predictions, device=device)
        folder = Path(out) if out else predictions / f"tracks_{split}"
        total = sum(len(source.videos[n].frames) for n in names)
        done = 0
        for name in names:
            video = source.videos[name]
            step = (lambda k, _, base=done: progress(base + k, total)) if progress else None
            track_objects(predictor, video.frames, folder / name, tracker=tracker, progress=step, contact_frames=4, overwrite=True)
            done += len(video.frames)
        predictions = folder
    elif not predictions.is_dir():
        raise ConfigError(f"{predictions} is neither a run (model.json) nor a folder of tracked videos")
    report = video_report({name: score_video(source, source.videos[name], predictions) for name in names})
    report["predictions"], report["data"], report["split"] = str(predictions), str(data), split
    write_text(predictions / "video_metrics.json", json.dumps(report, indent=2))
    return report
