"""``omniseg track``: every object of a video detected and tracked by a trained run, or objects prompted on frames
followed through all of it with Segment Anything 2."""

from __future__ import annotations

import argparse

from rich.console import Console

from omniseg.cli.output import add_device_argument, progress_bar
from omniseg.errors import ConfigError


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="track objects through a video (a trained run, or Segment Anything 2 prompts)",
                       description="omniseg track RUN VIDEO: a trained instance (or panoptic) run detects every frame and the "
                                   "detections are joined into tracks (Kalman-predicted mask and box IoU, Hungarian assignment, "
                                   "ByteTrack's second round for weak detections, a lost-track buffer); a semantic run predicts "
                                   "every frame's classes (--smooth over time). omniseg track VIDEO --model SAM2 --point ...: "
                                   "prompted objects followed by Segment Anything 2. Either writes OUT/masks/<frame>.png (pixel "
                                   "value = object id, DAVIS's palette), tracks.json (per object and frame: RLE, box, score), "
                                   "overlay.mp4 (ids and trails) and contact_sheet.png.")
    p.add_argument("inputs", nargs="+", metavar="[RUN] VIDEO", help="a trained run, then a video file (MP4, MOV, AVI, WebM, ...), "
                   "a folder of frames or a TIFF stack; or the video alone with --model and prompts")
    p.add_argument("--model", help="a SAM 2 checkpoint (sam2.1_hiera_tiny.pt, ...) or a promptable run, followed from the prompts")
    p.add_argument("--arch", help="the checkpoint's architecture (e.g. sam2.1_hiera_tiny); an official file's name gives it")
    p.add_argument("--point", action="append", default=[], type=_point, metavar="F:X,Y[,L][:ID]",
                   help="a click on frame F (L=0: background; object ID, default 1); repeatable")
    p.add_argument("--box", action="append", default=[], type=_box, metavar="F:X0,Y0,X1,Y1[:ID]", help="a box on frame F; repeatable")
    p.add_argument("--mask", action="append", default=[], type=_mask, metavar="F:PNG[:ID]", help="a mask on frame F (nonzero = "
                   "object); repeatable")
    p.add_argument("--out", required=True, help="output folder (a killed run started again with the same options goes on "
                   "from its last checkpoint; a finished one is left as it is)")
    p.add_argument("--overwrite", action="store_true", help="track again from the start, whatever OUT holds")
    tracking = p.add_argument_group("tracking a run's detections")
    tracking.add_argument("--high-score", type=float, default=0.5, help="detections at or above it are matched first (default 0.5)")
    tracking.add_argument("--low-score", type=float, default=0.1, help="weaker detections are dropped; those between keep tracks "
                          "alive in a second round (default 0.1)")
    tracking.add_argument("--birth-score", type=float, default=0.6, help="the least score that starts a track (default 0.6)")
    tracking.add_argument("--match-iou", type=float, default=0.2, help="the least IoU of a match to a track's prediction (default 0.2)")
    tracking.add_argument("--min-hits", type=int, default=2, help="frames in a row before a new track is reported (default 2)")
    tracking.add_argument("--lost-frames", type=int, default=30, help="frames a lost track waits to be found again (default 30)")
    tracking.add_argument("--no-motion", action="store_true", help="no Kalman prediction: a track is looked for where it was")
    tracking.add_argument("--smooth", type=float, default=0.0, help="semantic runs: weight of the previous frames' class "
                          "probabilities, 0..1 (default 0: each frame alone)")
    tracking.add_argument("--instances", action="store_true", help="semantic runs: track each connected region of a thing class "
                          "as an object (as predict --instances) instead of writing classes")
    tracking.add_argument("--propagate", choices=["sam2"], help="sam2: Segment Anything 2 (--model) carries the objects between "
                          "detections, through the detector's misses, instead of the Kalman tracker")
    tracking.add_argument("--max-frames", type=int, help="stop after this many frames")
    add_device_argument(p)


def _split(text: str, what: str, usage: str) -> tuple[int, str, int]:
    parts = text.split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        return int(parts[0]), parts[1], int(parts[2]) if len(parts) == 3 else 1
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} {text!r} is not {usage}") from None


def _numbers(text: str, count: tuple[int, ...], what: str, usage: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} {text!r} is not {usage}") from None
    if len(values) not in count:
        raise argparse.ArgumentTypeError(f"{what} {text!r} is not {usage}")
    return values


def _point(text: str):
    from omniseg.inference.tracking.track_prompts import VideoPrompt

    usage = "FRAME:X,Y[,LABEL][:ID], e.g. 0:640,360 or 12:100,80,0:2"
    frame, coords, obj_id = _split(text, "--point", usage)
    values = _numbers(coords, (2, 3), "--point", usage)
    label = int(values[2]) if len(values) == 3 else 1
    if label not in (0, 1):
        raise argparse.ArgumentTypeError(f"--point {text!r}: the label is 1 (object) or 0 (background)")
    return VideoPrompt(frame, obj_id, "point", (values[0], values[1], label))


def _box(text: str):
    from omniseg.inference.tracking.track_prompts import VideoPrompt

    usage = "FRAME:X0,Y0,X1,Y1[:ID], e.g. 0:100,80,300,240"
    frame, coords, obj_id = _split(text, "--box", usage)
    return VideoPrompt(frame, obj_id, "box", _numbers(coords, (4,), "--box", usage))


def _mask(text: str):
    from omniseg.inference.tracking.track_prompts import VideoPrompt

    frame, path, obj_id = _split(text, "--mask", "FRAME:PNG[:ID], e.g. 0:first_mask.png")
    return VideoPrompt(frame, obj_id, "mask", path)


def run(args: argparse.Namespace, console: Console) -> int:
    if len(args.inputs) > 2:
        raise ConfigError(f"give RUN VIDEO or VIDEO alone, not {len(args.inputs)} paths: {' '.join(args.inputs)}")
    prompts = [*args.point, *args.box, *args.mask]
    if len(args.inputs) == 2 and args.model and not args.propagate:
        raise ConfigError("give the model once: RUN VIDEO, or VIDEO --model MODEL (or RUN VIDEO --propagate sam2 --model SAM2)")
    if args.propagate and (len(args.inputs) != 2 or not args.model or prompts):
        raise ConfigError("--propagate sam2 tracks a run's detections with SAM 2: omniseg track RUN VIDEO --propagate sam2 --model "
                          "SAM2_CHECKPOINT, without prompts")
    model, video = args.inputs if len(args.inputs) == 2 else (args.model, args.inputs[0])
    if model is None:
        raise ConfigError("give a trained run (omniseg track RUN VIDEO) or a SAM 2 model with prompts (--model MODEL --point ...)")
    if prompts:
        from omniseg.inference.tracking.track_prompts import track_video

        with progress_bar(console, "frames") as progress:
            summary = track_video(model, video, args.out, prompts, arch=args.arch, device=args.device, progress=progress,
                                  overwrite=args.overwrite)
        console.print(f"followed {len(summary['objects'])} object(s) through {summary['frames']} frames; wrote {args.out}/masks/, "
                      "tracks.json, overlay.mp4 and contact_sheet.png")
        return 0
    from pathlib import Path

    if not (Path(model) / "model.json").is_file():
        raise ConfigError(f"{model} is not a trained run (no model.json); a SAM 2 checkpoint follows prompted objects: add --point, "
                          "--box or --mask")
    from omniseg.inference.tracking.association import TrackerConfig
    from omniseg.inference.tracking.track_detections import track_objects

    try:
        config = TrackerConfig(high_score=args.high_score, low_score=args.low_score, birth_score=args.birth_score,
                               match_iou=args.match_iou, min_hits=args.min_hits, lost_frames=args.lost_frames, motion=not args.no_motion)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    with progress_bar(console, "frames") as progress:
        summary = track_objects(model, video, args.out, tracker=config, smooth=args.smooth, instances=args.instances,
                                propagate=args.model if args.propagate else None, device=args.device, progress=progress,
                                overwrite=args.overwrite, max_frames=args.max_frames)
    what = f"{len(summary['objects'])} track(s)" if "objects" in summary else "the classes of every frame"
    console.print(f"tracked {what} through {summary['frames']} frames; wrote {args.out}/masks/, tracks.json, overlay.mp4 and "
                  "contact_sheet.png")
    return 0
