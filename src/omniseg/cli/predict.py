"""``omniseg predict``: masks (palette PNGs), instances (id PNGs + COCO results JSON) or panoptic segments
(COCO panoptic PNGs + JSON), with overlays, for images of any size."""

from __future__ import annotations

import argparse

from rich.console import Console

from omniseg.cli.output import progress_bar


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="predict masks", description="Predict masks for images or folders of images.")
    p.add_argument("run_dir", help="run directory written by `omniseg train`")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--device", help="cpu, cuda, ... (default: cuda when available)")
    p.add_argument("--score-threshold", type=float, default=0.5, help="instance and panoptic models: keep instances scoring at least this")
    p.add_argument("--mask-threshold", type=float, default=0.5, help="instance and panoptic models: mask probability cut")
    p.add_argument("--overlap-threshold", type=float, help="panoptic models: drop an instance whose mask is more than this "
                   "fraction covered by better ones (default: the model's)")
    p.add_argument("--stuff-min-area", type=int, help="panoptic models: smallest stuff segment in pixels (default: the model's)")
    p.add_argument("--instances", action="store_true", help="with a semantic run: its thing classes' connected regions as "
                   "instances (instance PNGs, overlays, COCO results), scored by mean class probability")
    p.add_argument("--split-touching", action="store_true", help="with --instances: split touching objects by a watershed")
    p.add_argument("--semantic", metavar="RUN", help="with an instance run: merge its instances with this semantic run's masks "
                   "(same classes) into panoptic output, as a panoptic model's are merged")


def run(args: argparse.Namespace, console: Console) -> int:
    from omniseg.inference import predict_images

    with progress_bar(console, "predicting") as progress:
        summary = predict_images(args.run_dir, args.inputs, args.out, device=args.device, score_threshold=args.score_threshold,
                                 mask_threshold=args.mask_threshold, overlap_threshold=args.overlap_threshold,
                                 stuff_min_area=args.stuff_min_area, instances=args.instances,
                                 split_touching=args.split_touching, semantic=args.semantic, progress=progress)
    what = {
        "semantic": f"{summary.files} masks and overlays",
        "instances": f"{summary.instances} instances in {summary.files} images (instance PNGs, overlays, coco_results.json, images.json)",
        "panoptic": f"{summary.files} panoptic PNGs, overlays and panoptic.json",
        "volumes": f"{summary.files} label volumes (NIfTI) and middle-slice overlays",
    }[summary.kind]
    console.print(f"wrote {what} to [bold]{summary.out}[/]")
    return 0
