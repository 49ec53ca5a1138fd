"""``omniseg runs``: the run directories under a folder with their task, model, data, steps and headline metric."""

from __future__ import annotations

import argparse
import time

from rich.console import Console

from omniseg.cli.output import emit_json, print_rows


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
    lines = [[row["path"], row["task"], row["model"], str(row["data"] or "-"), "-" if row["steps"] is None else str(row["steps"]),
              row["metric"] or "(unfinished)", "-" if row["value"] is None else f"{row['value']:.4f}",
              time.strftime("%Y-%m-%d %H:%M", time.localtime(row["modified"]))] for row in rows]
    print_rows(console, f"{len(rows)} runs under {args.folder}", ["run", "task", "model", "data", "steps", "metric", "value",
                                                                 "modified"], lines, right=("steps", "value"))
    emit_json(console, {"runs": rows}, args.json)
    return 0
