"""``omniseg runs``: the run directories under a folder with their task, model, data, steps and headline metric."""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table

from omniseg.cli.output import emit_json


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="list and compare runs", description="List the run directories under a folder (any "
                       "depth) with their task, model, data, steps and headline metric (mIoU, mask AP, PQ or mIoU@1).")
    p.add_argument("folder", nargs="?", default="runs", help="where to look (default: runs)")
    p.add_argument("--sort", choices=["metric", "steps", "name", "time"], default="metric",
                   help="order: metric (best first, default), steps, name, time (newest first)")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE", help="print the rows as JSON (or write FILE)")


def run(args: argparse.Namespace, console: Console) -> int:
    from omniseg.inference.runs import list_runs

    rows = list_runs(args.folder, sort=args.sort)
    if args.json == "-":
        emit_json(console, {"runs": rows}, "-")
        return 0
    table = Table(title=f"{len(rows)} runs under {args.folder}")
    for column in ("run", "task", "model", "data", "steps", "metric", "value", "modified"):
        table.add_column(column, justify="right" if column in ("steps", "value") else "left", overflow="fold")
    for row in rows:
        value = "-" if row["value"] is None else f"{row['value']:.4f}"
        table.add_row(row["path"], row["task"], row["model"], str(row["data"] or "-"), str(row["steps"] if row["steps"] is not None else "-"),
                      row["metric"] or "(unfinished)", value, time.strftime("%Y-%m-%d %H:%M", time.localtime(row["modified"])))
    console.print(table)
    emit_json(console, {"runs": rows}, args.json)
    return 0
