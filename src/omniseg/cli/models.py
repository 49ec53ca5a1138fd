"""``omniseg models``: the registered architectures."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from omniseg.cli.output import emit_json


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="list models", description="List the registered models with their parameter counts.")
    p.add_argument("--num-classes", type=int, default=21, help="classes used to count parameters (default 21)")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE", help="print as JSON (or write FILE)")


def run(args: argparse.Namespace, console: Console) -> int:
    from omniseg.models import MODELS, create_model

    rows = []
    for name in MODELS:
        meta = MODELS.meta(name)
        model = create_model(name, num_classes=args.num_classes)
        params = sum(p.numel() for p in model.parameters())
        rows.append({"name": name, "task": meta.get("task", ""), "parameters": params,
                     "description": meta.get("description", "")})
    if args.json == "-":
        emit_json(console, {"models": rows}, "-")
        return 0
    table = Table(title=f"Models (parameters at {args.num_classes} classes, default configuration)")
    for column in ("name", "task", "parameters", "description"):
        table.add_column(column, justify="right" if column == "parameters" else "left")
    for row in rows:
        table.add_row(row["name"], row["task"], f"{row['parameters'] / 1e6:.2f} M", row["description"])
    console.print(table)
    emit_json(console, {"models": rows}, args.json)
    return 0
