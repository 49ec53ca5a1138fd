"""``omniseg segment``: a classical method on images: region label PNGs, boundary overlays and a JSON record of
the parameters and timings."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from omniseg.cli.output import progress_bar
from omniseg.errors import ConfigError


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="segment images with a classical method",
                       description="Segment images with a classical method (see --list): writes <stem>.png (region ids, "
                                   "16-bit), overlays/<stem>.png (boundaries drawn on the image) and segment.json "
                                   "(parameters, regions, seconds). The folder can be scored by `omniseg eval --unsupervised`.")
    p.add_argument("inputs", nargs="*", metavar="IMAGE", help="image files or folders")
    p.add_argument("--method", help="method name (see --list)")
    p.add_argument("--param", action="append", default=[], metavar="K=V", help="set a method parameter (repeatable)")
    p.add_argument("--seeds", help="marks for watershed (markers), random-walker (seeds: v = label v - 1) and grabcut "
                   "(scribbles: 1 background, 2 foreground): an index PNG, or a folder of them named as the images")
    p.add_argument("--box", help="grabcut: LEFT,TOP,RIGHT,BOTTOM in pixels (right and bottom exclusive)")
    p.add_argument("--out", help="output folder")
    p.add_argument("--list", action="store_true", help="list the methods and their parameters, then exit")


def parse_parameters(items: list[str], defaults: dict) -> dict:
    """``["k=4", "connect=true"]`` -> ``{"k": 4, "connect": True}``, each value typed as its default."""
    values = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"--param {item!r} is not KEY=VALUE; write e.g. --param k=4")
        default = defaults.get(key)
        try:
            if isinstance(default, bool):
                if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                values[key] = text.lower() in ("true", "1", "yes")
            elif isinstance(default, int):
                values[key] = int(text)
            elif isinstance(default, float):
                values[key] = float(text)
            else:
                values[key] = text
        except ValueError:
            raise ConfigError(f"--param {key}={text}: expected a {type(default).__name__} like the default {default!r}") from None
    return values


def _box(text: str | None) -> tuple[int, int, int, int] | None:
    if text is None:
        return None
    try:
        left, top, right, bottom = (int(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--box {text!r} is not LEFT,TOP,RIGHT,BOTTOM (four integers, e.g. --box 10,20,200,180)") from None
    return left, top, right, bottom


def _list_methods(console: Console) -> int:
    from omniseg.classical.methods import METHODS

    table = Table(title="classical methods")
    for column in ("method", "what it does", "parameters (defaults)", "marks"):
        table.add_column(column)
    for name, entry in METHODS.items():
        parameters = ", ".join(f"{k}={v}" for k, v in entry.parameters().items())
        table.add_row(name, entry.summary, parameters, {"seeds": "--seeds (required)", "markers": "--seeds (optional)",
                                                        "box-or-scribbles": "--box and/or --seeds"}.get(entry.marks, ""))
    console.print(table)
    return 0


def run(args: argparse.Namespace, console: Console) -> int:
    from omniseg.classical.methods import method
    from omniseg.inference import segment_images

    if args.list:
        return _list_methods(console)
    if not (args.inputs and args.method and args.out):
        raise ConfigError("pass IMAGE... --method NAME --out DIR (see `omniseg segment --list` for the methods)")
    try:
        defaults = method(args.method).parameters()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    with progress_bar(console, args.method) as progress:
        record = segment_images(args.inputs, args.method, args.out, parameters=parse_parameters(args.param, defaults),
                                seeds=args.seeds, box=_box(args.box), progress=progress)
    console.print(f"{args.method}: {len(record['images'])} image(s), {record['seconds_per_image']:.3f} s per image; wrote {args.out}")
    return 0
