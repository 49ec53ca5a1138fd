"""``omniseg segment``: a classical method on images: region label PNGs, boundary overlays and a JSON record of
the parameters and timings."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from omniseg.errors import ConfigError, DataError


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


def _seeds(seeds: str | None, image_path: Path) -> np.ndarray | None:
    from omniseg.data.imageio import read_label_png

    if seeds is None:
        return None
    path = Path(seeds)
    if path.is_dir():
        path = path / f"{image_path.stem}.png"
        if not path.is_file():
            raise DataError(f"no seeds {path} for {image_path}; name each seed PNG after its image")
    values = read_label_png(path)[0]
    if values.ndim != 2:
        raise DataError(f"seeds {path} are a colour image; save them as an index (or palette) PNG with 0 = unmarked")
    return values.astype(np.int64)


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
    from PIL import Image

    from omniseg.classical.methods import method, resolve_parameters, segment
    from omniseg.cli.predict import collect_images
    from omniseg.data.imageio import read_image
    from omniseg.viz.overlay import boundary_overlay

    if args.list:
        return _list_methods(console)
    if not (args.inputs and args.method and args.out):
        raise ConfigError("pass IMAGE... --method NAME --out DIR (see `omniseg segment --list` for the methods)")
    try:
        parameters = resolve_parameters(args.method, parse_parameters(args.param, method(args.method).parameters()))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    box = _box(args.box)
    images = collect_images(args.inputs)
    out = Path(args.out)
    (out / "overlays").mkdir(parents=True, exist_ok=True)
    record = {"method": args.method, "parameters": parameters, "box": box, "seeds": args.seeds, "images": []}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"{args.method}", total=len(images))
        for path in images:
            image = read_image(path).permute(1, 2, 0).numpy()
            seeds = _seeds(args.seeds, path)
            start = time.perf_counter()
            try:
                labels = segment(image, args.method, parameters, seeds=seeds, box=box)
            except ValueError as exc:
                raise DataError(f"{path}: {exc}") from None
            seconds = time.perf_counter() - start
            regions = int(labels.max()) + 1
            if regions > 65536:
                raise DataError(f"{path}: {regions} regions do not fit a 16-bit PNG; choose parameters giving fewer regions")
            Image.fromarray(labels.astype(np.uint16)).save(out / f"{path.stem}.png")
            Image.fromarray(boundary_overlay(image, labels)).save(out / "overlays" / f"{path.stem}.png")
            record["images"].append({"image": str(path), "labels": f"{path.stem}.png", "overlay": f"overlays/{path.stem}.png",
                                     "regions": regions, "seconds": round(seconds, 4)})
            progress.advance(task)
    record["seconds_per_image"] = round(float(np.mean([entry["seconds"] for entry in record["images"]])), 4)
    (out / "segment.json").write_text(json.dumps(record, indent=2))
    console.print(f"{args.method}: {len(images)} image(s), {record['seconds_per_image']:.3f} s per image; wrote {out}")
    return 0
