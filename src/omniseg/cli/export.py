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
    p.add_argument("--format", choices=("onnx", "torch", "openvino"), default="onnx", help="onnx (extra 'onnx'), torch "
                   "(.pt2), or openvino (.xml + .bin, extra 'openvino')")
    p.add_argument("--quantize", choices=("int8",), help="2D semantic runs: INT8 weights and activations (onnx: ONNX "
                   "Runtime static QDQ quantisation, per-channel weights; openvino: NNCF), calibrated on --calibration")
    p.add_argument("--calibration", metavar="DATA", help="dataset whose images calibrate the INT8 ranges and measure the "
                   "export against float32 (default: the run's own training data)")
    p.add_argument("--samples", type=int, default=32, help="calibration tiles (default 32), one per image at the export size")
    p.add_argument("--calibration-method", choices=("minmax", "percentile", "entropy"), default="minmax",
                   help="ONNX Runtime's activation range estimate (default minmax)")
    p.add_argument("--size", default="512x512", help="input size HxW, or DxHxW for volumetric models (default 512x512)")
    p.add_argument("--out", required=True, help="output file (.onnx, .pt2 or .xml); 2D semantic exports write the agreement "
                   "with float32 beside it (<name>.agreement.json)")
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
    from omniseg.inference.evaluate.exports import export_measured
    from omniseg.inference.promptable.export_sam import export_promptable, is_promptable_run

    from omniseg.models.promptable.sam import OFFICIAL_ARCHITECTURE

    if args.arch is not None or is_promptable_run(args.run_dir) or Path(args.run_dir).name in OFFICIAL_ARCHITECTURE:
        result = export_promptable(args.run_dir, args.out, arch=args.arch, single_mask=args.single_mask)
        console.print(f"wrote {result['decoder']} and {result['encoder']}; largest difference to PyTorch: decoder "
                      f"{result['decoder_max_abs_difference']:.2e}, encoder {result['encoder_max_abs_difference']:.2e}")
        emit_json(console, result, args.json)
        return 0
    result = export_measured(args.run_dir, args.out, format=args.format, size=parse_size(args.size), quantize=args.quantize,
                        calibration=args.calibration, samples=args.samples, calibration_method=args.calibration_method)
    console.print(f"wrote {result['file']} ({args.format}{', ' + args.quantize if args.quantize else ''}, input "
                  f"{result['input_shape']}); largest difference to PyTorch {result['max_abs_difference']:.2e}; "
                  f"preprocessing and classes in {result['sidecar']}")
    if "agreement" in result:
        miou = f", mIoU difference {result['miou_difference']:+.4f}" if "miou_difference" in result else ""
        console.print(f"against float32 PyTorch: {result['pixel_agreement']:.2%} of pixels agree{miou} ({result['agreement']})")
    emit_json(console, result, args.json)
    return 0
