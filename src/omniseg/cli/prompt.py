"""``omniseg prompt`` and ``omniseg autolabel``: masks from clicks and boxes, and COCO labels for many images."""

from __future__ import annotations

import argparse

from rich.console import Console

from omniseg.cli.output import add_device_argument, progress_bar
from omniseg.errors import ConfigError


def _model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", help="the checkpoint's architecture: sam_vit_b, sam_vit_l, sam_vit_h, mobile_sam, sam")
    add_device_argument(p)


def add_parser(sub, name: str) -> None:
    if name == "autolabel":
        p = sub.add_parser(name, help="label images as COCO instances with Segment Anything",
                           description="Find every object (Segment Anything's automatic mask generator), or segment the "
                                       "boxes an instance/panoptic run detects (--boxes-from), and write OUT/images/ and "
                                       "OUT/annotations/instances.json (COCO RLE), which `omniseg train` reads.")
        p.add_argument("model", metavar="MODEL", help="a promptable run directory or a checkpoint file (with --arch)")
        p.add_argument("inputs", nargs="+", metavar="IMAGES", help="image files, folders or globs")
        p.add_argument("--out", required=True, help="output folder")
        p.add_argument("--boxes-from", metavar="RUN", help="an instance or panoptic run whose detections are the prompts")
        p.add_argument("--score-threshold", type=float, default=0.5, help="detections kept as prompts (with --boxes-from)")
        p.add_argument("--points-per-side", type=int, default=32, help="automatic mode: grid points per side")
        p.add_argument("--pred-iou-thresh", type=float, default=0.88, help="automatic mode: predicted-IoU filter")
        p.add_argument("--stability-thresh", type=float, default=0.95, help="automatic mode: stability filter")
        p.add_argument("--crop-layers", type=int, default=0, help="automatic mode: layers of crops run again")
        p.add_argument("--min-region-area", type=int, default=0, help="automatic mode: fill holes and drop islands under this area")
        p.add_argument("--tile", type=int, help="automatic mode: run the generator on tiles of this side (large images), "
                       "the tiles' masks merged at the seams")
        p.add_argument("--overlap", type=float, default=0.5, help="with --tile: the tiles' overlap, 0..1 (default 0.5)")
        _model_arguments(p)
        return
    p = sub.add_parser(name, help="segment an object from clicks and boxes",
                       description="Masks for points (x,y[,label]: 1 object, 0 background) and boxes (x0,y0,x1,y1) on one "
                                   "image with Segment Anything (a run, or a checkpoint with --arch) or without weights "
                                   "(--engine grabcut|random-walker). Writes mask.png, masks/, overlay.png and prompt.json.")
    p.add_argument("model", nargs="?", metavar="MODEL", help="a promptable run directory or a checkpoint file (with --arch)")
    p.add_argument("image", metavar="IMAGE", help="the image")
    p.add_argument("--point", action="append", default=[], metavar="X,Y[,L]", help="a click (repeatable); L=0 marks background")
    p.add_argument("--box", action="append", default=[], metavar="X0,Y0,X1,Y1", help="a box (repeatable: one object per box)")
    p.add_argument("--single", action="store_true", help="one mask per prompt instead of three proposals")
    p.add_argument("--engine", choices=["grabcut", "random-walker"], help="prompt without weights")
    p.add_argument("--out", required=True, help="output folder")
    _model_arguments(p)


def parse_point(text: str) -> tuple[float, float, int]:
    parts = text.split(",")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        label = int(parts[2]) if len(parts) == 3 else 1
        if label not in (0, 1):
            raise ValueError
        return float(parts[0]), float(parts[1]), label
    except ValueError:
        raise ConfigError(f"--point {text!r} is not X,Y or X,Y,L with L 1 (object) or 0 (background), e.g. --point 120,80,1") from None


def parse_box(text: str) -> tuple[float, float, float, float]:
    try:
        x0, y0, x1, y1 = (float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--box {text!r} is not X0,Y0,X1,Y1 (four numbers, e.g. --box 10,20,200,180)") from None
    return x0, y0, x1, y1


def run(args: argparse.Namespace, console: Console) -> int:
    from omniseg.inference.promptable.prompt_files import autolabel_images, prompt_image

    if args.command == "autolabel":
        with progress_bar(console, "autolabel") as progress:
            summary = autolabel_images(args.model, args.inputs, args.out, arch=args.arch, boxes_from=args.boxes_from,
                                       score_threshold=args.score_threshold, device=args.device, progress=progress,
                                       points_per_side=args.points_per_side, pred_iou_thresh=args.pred_iou_thresh,
                                       stability_score_thresh=args.stability_thresh, crop_n_layers=args.crop_layers,
                                       min_mask_region_area=args.min_region_area, tile=args.tile, overlap=args.overlap)
        console.print(f"{summary['objects']} object(s) in {summary['images']} image(s); wrote {summary['out']}/annotations/instances.json")
        return 0
    if args.engine is None and args.model is None:
        raise ConfigError("pass MODEL IMAGE (a run, or a checkpoint with --arch) or IMAGE --engine grabcut|random-walker")
    if not args.point and not args.box:
        raise ConfigError("give a prompt: --point X,Y[,L] and/or --box X0,Y0,X1,Y1")
    points = [parse_point(p) for p in args.point]
    record = prompt_image(args.model, args.image, args.out, points=[p[:2] for p in points] or None,
                          labels=[p[2] for p in points] or None, boxes=[parse_box(b) for b in args.box] or None,
                          multimask=not args.single, arch=args.arch, engine=args.engine, device=args.device)
    for k, obj in enumerate(record["objects"]):
        scores = ", ".join("n/a" if s is None else f"{s:.3f}" for s in obj["iou_predictions"])
        console.print(f"object {k}: {obj['mask']} ({obj['area']} px); predicted IoU of the proposals: {scores}")
    console.print(f"wrote {args.out}/prompt.json and overlay.png")
    return 0
