"""``omniseg models``: the registered architectures."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from omniseg.cli.output import emit_json, progress_bar


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="list models", description="List the registered models with their parameter counts.")
    p.add_argument("--models", metavar="NAME,...", help="only these models (default: all)")
    p.add_argument("--num-classes", type=int, default=21, help="classes used to count parameters (default 21)")
    p.add_argument("--benchmark", action="store_true", help="also measure GFLOPs and CPU latency (batch 1)")
    p.add_argument("--size", type=int, default=512, help="input side for --benchmark (default 512)")
    p.add_argument("--volume-size", type=int, default=64, help="cube side for volumetric models (default 64)")
    p.add_argument("--markdown", metavar="FILE", help="with --benchmark: write the table as Markdown (docs/models.md)")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE", help="print as JSON (or write FILE)")


def run(args: argparse.Namespace, console: Console) -> int:
    from omniseg.models.profile import model_table, models_markdown

    with progress_bar(console, "measuring", disable=not args.benchmark) as progress:
        names = [n.strip() for n in args.models.split(",") if n.strip()] if args.models else None
        rows = model_table(names, num_classes=args.num_classes, benchmark=args.benchmark, size=args.size,
                           volume_size=args.volume_size, progress=progress)
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
        command = (f"omniseg models --benchmark --size {args.size} --volume-size {args.volume_size} --markdown {args.markdown}")
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(models_markdown(rows, num_classes=args.num_classes, size=args.size,
                                                       volume_size=args.volume_size, command=command))
        console.print(f"wrote {args.markdown}")
    emit_json(console, {"models": rows}, args.json)
    return 0
