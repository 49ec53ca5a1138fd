"""``omniseg track``: objects prompted on frames of a video followed through all of it with Segment Anything 2."""

from __future__ import annotations

import argparse

from rich.console import Console

from omniseg.cli.output import add_device_argument, progress_bar
from omniseg.errors import ConfigError


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="follow objects through a video (Segment Anything 2)",
                       description="Prompt objects on any frames (clicks, boxes, masks) and follow them through the whole "
                                   "video: OUT/masks/<frame>.png (pixel value = object id, DAVIS's palette), tracks.json "
                                   "(per object and frame: RLE, box, area, visible), overlay.mp4 and contact_sheet.png.")
    p.add_argument("video", help="a video file (MP4, MOV, AVI, WebM, ...), a folder of frames or a TIFF stack")
    p.add_argument("--model", required=True, help="a SAM 2 checkpoint (sam2.1_hiera_tiny.pt, ...) or a promptable run")
    p.add_argument("--arch", help="the checkpoint's architecture (e.g. sam2.1_hiera_tiny); an official file's name gives it")
    p.add_argument("--point", action="append", default=[], type=_point, metavar="F:X,Y[,L][:ID]",
                   help="a click on frame F (L=0: background; object ID, default 1); repeatable")
    p.add_argument("--box", action="append", default=[], type=_box, metavar="F:X0,Y0,X1,Y1[:ID]", help="a box on frame F; repeatable")
    p.add_argument("--mask", action="append", default=[], type=_mask, metavar="F:PNG[:ID]", help="a mask on frame F (nonzero = "
                   "object); repeatable")
    p.add_argument("--out", required=True, help="output folder (a killed run started again with the same prompts goes on "
                   "from its last checkpoint; a finished one is left as it is)")
    p.add_argument("--overwrite", action="store_true", help="track again from the start, whatever OUT holds")
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
    from omniseg.inference.promptable.track_files import VideoPrompt

    usage = "FRAME:X,Y[,LABEL][:ID], e.g. 0:640,360 or 12:100,80,0:2"
    frame, coords, obj_id = _split(text, "--point", usage)
    values = _numbers(coords, (2, 3), "--point", usage)
    label = int(values[2]) if len(values) == 3 else 1
    if label not in (0, 1):
        raise argparse.ArgumentTypeError(f"--point {text!r}: the label is 1 (object) or 0 (background)")
    return VideoPrompt(frame, obj_id, "point", (values[0], values[1], label))


def _box(text: str):
    from omniseg.inference.promptable.track_files import VideoPrompt

    usage = "FRAME:X0,Y0,X1,Y1[:ID], e.g. 0:100,80,300,240"
    frame, coords, obj_id = _split(text, "--box", usage)
    return VideoPrompt(frame, obj_id, "box", _numbers(coords, (4,), "--box", usage))


def _mask(text: str):
    from omniseg.inference.promptable.track_files import VideoPrompt

    frame, path, obj_id = _split(text, "--mask", "FRAME:PNG[:ID], e.g. 0:first_mask.png")
    return VideoPrompt(frame, obj_id, "mask", path)


def run(args: argparse.Namespace, console: Console) -> int:
    from omniseg.inference.promptable.track_files import track_video

    prompts = [*args.point, *args.box, *args.mask]
    if not prompts:
        raise ConfigError("give at least one prompt: --point F:X,Y[:ID], --box F:X0,Y0,X1,Y1[:ID] or --mask F:PNG[:ID]")
    with progress_bar(console, "frames") as progress:
        summary = track_video(args.model, args.video, args.out, prompts, arch=args.arch, device=args.device, progress=progress,
                              overwrite=args.overwrite)
    console.print(f"followed {len(summary['objects'])} object(s) through {summary['frames']} frames; wrote {args.out}/masks/, "
                  "tracks.json, overlay.mp4 and contact_sheet.png")
    return 0
