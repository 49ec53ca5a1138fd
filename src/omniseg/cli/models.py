"""``omniseg models``: the registered architectures."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from omniseg.cli.output import emit_json


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="list models", description="List the registered models with their parameter counts.")
    p.add_argument("--num-classes", type=int, default=21, help="classes used to count parameters (default 21)")
    p.add_argument("--benchmark", action="store_true", help="also measure GFLOPs and CPU latency (batch 1)")
    p.add_argument("--size", type=int, default=512, help="input side for --benchmark (default 512)")
    p.add_argument("--volume-size", type=int, default=64, help="cube side for volumetric models (default 64)")
    p.add_argument("--markdown", metavar="FILE", help="with --benchmark: write the table as Markdown (docs/models.md)")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE", help="print as JSON (or write FILE)")


def run(args: argparse.Namespace, console: Console) -> int:
    from contextlib import nullcontext

    import torch
    from rich.progress import Progress

    from omniseg.models import MODELS, create_model
    from omniseg.models.profile import count_parameters, profile_model

    rows = []
    with Progress(console=console, transient=True, disable=not args.benchmark) as progress:
        task = progress.add_task("measuring", total=len(MODELS))
        for name in MODELS:
            meta = MODELS.meta(name)
            # counting alone needs no memory: build on the meta device unless we measure
            with nullcontext() if args.benchmark else torch.device("meta"):
                model = create_model(name, num_classes=args.num_classes)
            row = {"name": name, "task": meta.get("task", ""), "parameters": count_parameters(model),
                   "description": meta.get("description", "")}
            if args.benchmark:
                row.update(profile_model(model, size=args.size, volume_size=args.volume_size))
            rows.append(row)
            progress.advance(task)
    if args.json == "-":
        emit_json(console, {"models": rows}, "-")
        return 0
    table = Table(title=f"Models (parameters at {args.num_classes} classes, default configuration)")
    columns = ["name", "task", "parameters"] + (["GFLOPs", "CPU ms"] if args.benchmark else []) + ["description"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("name", "task", "description") else "right")
    for row in rows:
        cells = [row["name"], row["task"], f"{row['parameters'] / 1e6:.2f} M"]
        if args.benchmark:
            cells += [f"{row['gflops']:.1f}", f"{row['latency_ms']:.0f}"]
        table.add_row(*cells, row["description"])
    console.print(table)
    if args.benchmark and args.markdown:
        _write_markdown(args.markdown, rows, args)
        console.print(f"wrote {args.markdown}")
    emit_json(console, {"models": rows}, args.json)
    return 0


def _write_markdown(path: str, rows: list[dict], args: argparse.Namespace) -> None:
    import platform
    from pathlib import Path

    import torch

    lines = [
        "# Models",
        "",
        f"Written by `omniseg models --benchmark --size {args.size} --volume-size {args.volume_size} --markdown {path}`: "
        "default configuration of",
        f"each model, {args.num_classes} classes, one {args.size}x{args.size} image (volumetric models: one "
        f"single-channel {args.volume_size}^3 volume), eval mode, CPU "
        f"({platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}).",
        "",
        "GFLOPs count a multiply-add as two operations (torch.utils.flop_counter); latency is a median of 3.",
        "",
        "| model | task | parameters | GFLOPs | CPU latency (ms) | description |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        lines.append(f"| `{row['name']}` | {row['task']} | {row['parameters']:,} | {row['gflops']:.1f} | "
                     f"{row['latency_ms']:.0f} | {row['description']} |")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines) + "\n")
