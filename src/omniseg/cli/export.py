"""``omniseg export``: a trained model as ONNX or a ``torch.export`` program, checked against PyTorch."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from omniseg.cli.output import emit_json
from omniseg.errors import ConfigError


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="export a model", description=(
        "Export the model of a run as ONNX (extra 'onnx') or as a torch.export program (.pt2), at a fixed "
        "input size, and check the exported outputs against PyTorch. The graph takes normalised input; "
        "the preprocessing and class names are written beside it as JSON. Segment Anything (a promptable run, or "
        "a checkpoint with --arch) exports to the --out folder as decoder.onnx (SAM's ONNX contract: embeddings, "
        "points and labels, mask input, has-mask flag, original size) and encoder.onnx."))
    p.add_argument("run_dir", help="run directory written by `omniseg train`, or a SAM / SAM 2 checkpoint file (an official "
                   "file name gives its architecture; another needs --arch)")
    p.add_argument("--arch", help="the SAM checkpoint's architecture: sam_vit_b, sam_vit_l, sam_vit_h, mobile_sam, sam2.1_hiera_tiny, ...")
    p.add_argument("--single-mask", action="store_true", help="SAM: the decoder returns the best mask only")
    p.add_argument("--format", choices=("onnx", "torch"), default="onnx")
    p.add_argument("--size", default="512x512", help="input size HxW, or DxHxW for volumetric models (default 512x512)")
    p.add_argument("--out", required=True, help="output file (.onnx or .pt2)")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE", help="print the result as JSON (or write FILE)")


def parse_size(text: str) -> list[int]:
    """``"512x512"`` -> ``[512, 512]`` (``DxHxW`` for volumes)."""
    try:
        sides = [int(v) for v in text.lower().split("x")]
    except ValueError:
        sides = []
    if len(sides) not in (2, 3) or min(sides, default=0) < 1:
        raise ConfigError(f"--size {text!r} is not HxW (e.g. 512x512), or DxHxW for a volumetric model (e.g. 64x128x128)")
    return sides


def run(args: argparse.Namespace, console: Console) -> int:
    from omniseg.inference.deploy.export import export_run
    from omniseg.inference.promptable.export_sam import export_promptable, is_promptable_run

    from omniseg.models.promptable.sam import OFFICIAL_ARCHITECTURE

    if args.arch is not None or is_promptable_run(args.run_dir) or Path(args.run_dir).name in OFFICIAL_ARCHITECTURE:
        result = export_promptable(args.run_dir, args.out, arch=args.arch, single_mask=args.single_mask)
        console.print(f"wrote {result['decoder']} and {result['encoder']}; largest difference to PyTorch: decoder "
                      f"{result['decoder_max_abs_difference']:.2e}, encoder {result['encoder_max_abs_difference']:.2e}")
        emit_json(console, result, args.json)
        return 0
    result = export_run(args.run_dir, args.out, format=args.format, size=parse_size(args.size))
    console.print(f"wrote {result['file']} ({args.format}, input {result['input_shape']}); largest difference to PyTorch "
                  f"{result['max_abs_difference']:.2e}; preprocessing and classes in {result['sidecar']}")
    emit_json(console, result, args.json)
    return 0
