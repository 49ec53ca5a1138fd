"""``omniseg export``: a trained model as ONNX or a ``torch.export`` program, checked against PyTorch."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from omniseg.cli.output import emit_json
from omniseg.errors import ConfigError


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="export a model", description=(
        "Export the model of a run as ONNX (extra 'onnx') or as a torch.export program (.pt2), at a fixed "
        "input size, and check the exported outputs against PyTorch. The graph takes normalised input; "
        "the preprocessing and class names are written beside it as JSON."))
    p.add_argument("run_dir", help="run directory written by `omniseg train`")
    p.add_argument("--format", choices=("onnx", "torch"), default="onnx")
    p.add_argument("--size", default="512x512", help="input size HxW, or DxHxW for volumetric models (default 512x512)")
    p.add_argument("--out", required=True, help="output file (.onnx or .pt2)")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE", help="print the result as JSON (or write FILE)")


def parse_size(text: str, dims: int) -> list[int]:
    try:
        sides = [int(v) for v in text.lower().split("x")]
    except ValueError:
        sides = []
    if len(sides) != dims or min(sides, default=0) < 1:
        want = "DxHxW, e.g. 64x128x128" if dims == 3 else "HxW, e.g. 512x512"
        raise ConfigError(f"--size {text!r} is not {want}")
    return sides


def run(args: argparse.Namespace, console: Console) -> int:
    import torch

    from omniseg.inference.export import export_onnx, export_program, onnx_max_difference
    from omniseg.models.hub import load_model
    from omniseg.models.profile import example_input
    from omniseg.models.semantic.base import is_volumetric

    model = load_model(args.run_dir).eval()
    volumetric = is_volumetric(model)
    sides = parse_size(args.size, 3 if volumetric else 2)
    x = example_input(model, sides[-2], sides[-1], sides[0] if volumetric else 1)
    out = Path(args.out)
    if args.format == "onnx":
        export_onnx(model, out, x)
        difference = onnx_max_difference(out, model, x)
    else:
        program = export_program(model, x)
        out.parent.mkdir(parents=True, exist_ok=True)
        torch.export.save(program, out)
        with torch.no_grad():
            difference = float((torch.export.load(out).module()(x) - model(x)).abs().max())
    card = model.card
    sidecar = out.with_suffix(".json")
    sidecar.write_text(json.dumps({
        "architecture": card.architecture, "input_shape": list(x.shape), "preprocessing": card.preprocessing,
        **card.info.to_dict(), "max_abs_difference": difference,
    }, indent=2))
    result = {"file": str(out), "format": args.format, "input_shape": list(x.shape), "max_abs_difference": difference}
    console.print(f"wrote {out} ({args.format}, input {list(x.shape)}); largest difference to PyTorch "
                  f"{difference:.2e}; preprocessing and classes in {sidecar}")
    emit_json(console, result, args.json)
    return 0
