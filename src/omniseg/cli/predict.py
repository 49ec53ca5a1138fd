"""``omniseg predict``: masks (palette PNGs), instances (id PNGs + COCO results JSON) or panoptic segments
(COCO panoptic PNGs + JSON), with overlays, for images of any size."""

from __future__ import annotations

import argparse

from rich.console import Console

from omniseg.cli.output import add_device_argument, add_precision_argument, progress_bars
from omniseg.errors import ConfigError


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="predict masks", description="Predict masks for images or folders of images.")
    p.add_argument("run_dir", help="run directory written by `omniseg train`")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    p.add_argument("--out", required=True, help="output folder")
    add_device_argument(p)
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
    p.add_argument("--tile", default="auto", type=_tile, help="sliding-window tile side in pixels (0: the "
                   "training size; 'auto' (default): the training size for images over four tiles, else whole; 'none': whole)")
    p.add_argument("--overlap", type=float, default=0.5, help="overlap of neighbouring tiles, 0..1 (default 0.5)")
    p.add_argument("--tta", help="test-time augmentation, e.g. flip, flips, rot90, scale=0.75,1,1.25 (groups multiply)")
    p.add_argument("--mask-format", choices=["png", "tiff"], default="png", help="semantic runs: class ids as a palette PNG, or a "
                   "tiled TIFF (256-pixel tiles, zlib, BigTIFF when large), both written as rows finish")
    p.add_argument("--probabilities", action="store_true", help="also write each class's probability as a grey PNG")
    p.add_argument("--batch-size", type=int, help="tiles per forward pass (default: 1 on a CPU, fastest and lightest "
                   "there; 4 on a GPU)")
    p.add_argument("--overwrite", action="store_true", help="predict files whose outputs exist too (default: skip them)")
    p.add_argument("--devices", type=int, default=1, help="semantic runs: share the files among this many processes "
                   "(one GPU each, or the CPU's threads split); under torchrun each rank takes its share")
    p.add_argument("--backend", choices=["torch", "onnxruntime", "openvino"], default="torch", help="run tiles with PyTorch, "
                   "ONNX Runtime or OpenVINO (2D semantic runs): the --exported file (float32 or INT8, as `omniseg export` "
                   "wrote it); without one, onnxruntime exports the float32 model at the training size into the run")
    p.add_argument("--exported", metavar="FILE", help="with --backend onnxruntime|openvino: the exported model (.onnx or .xml)")
    add_precision_argument(p)


def _tile(text: str) -> int | str | None:
    if text in ("auto", "none"):
        return None if text == "none" else text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--tile takes a side in pixels, 0, auto or none, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"--tile {value}: a side is positive (0: the training size)")
    return value


def run(args: argparse.Namespace, console: Console) -> int:
    from omniseg.inference import predict_images

    if args.devices < 1:
        raise ConfigError(f"--devices {args.devices}: at least 1")
    if not 0 <= args.overlap < 1:
        raise ConfigError(f"--overlap {args.overlap}: a fraction of the tile in [0, 1)")
    with progress_bars(console, "files", "tiles of the file") as (progress, tile_progress):
        summary = predict_images(args.run_dir, args.inputs, args.out, device=args.device, score_threshold=args.score_threshold,
                                 mask_threshold=args.mask_threshold, overlap_threshold=args.overlap_threshold,
                                 stuff_min_area=args.stuff_min_area, instances=args.instances,
                                 split_touching=args.split_touching, semantic=args.semantic, progress=progress,
                                 tile=args.tile, overlap=args.overlap, tta=args.tta, probabilities=args.probabilities,
                                 overwrite=args.overwrite, batch_size=args.batch_size, tile_progress=tile_progress,
                                 mask_format=args.mask_format, backend=args.backend, devices=args.devices,
                                 exported=args.exported, precision=args.precision)
    what = {
        "semantic": f"{summary.files} masks and overlays",
        "instances": f"{summary.instances} instances in {summary.files} images (instance PNGs, overlays, coco_results.json, images.json)",
        "panoptic": f"{summary.files} panoptic PNGs, overlays and panoptic.json",
        "volumes": f"{summary.files} label volumes (NIfTI) and middle-slice overlays",
    }[summary.kind]
    console.print(f"wrote {what} to [bold]{summary.out}[/]")
    return 0
