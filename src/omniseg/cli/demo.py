"""``omniseg demo``: generate the synthetic shapes, train a small model on them for a fixed number of steps,
evaluate, write the run."""

from __future__ import annotations

import argparse
import time

from rich.console import Console

from omniseg.cli.output import emit_json, print_any_report, quiet_libraries

TASKS = ("semantic", "instance", "panoptic", "promptable", "video")


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="train and evaluate on the embedded synthetic data",
                       description="Generate synthetic shape scenes, train a small model on them for a fixed number of "
                                   "steps and evaluate it: a U-Net (semantic), a light Mask R-CNN (instance), a light "
                                   "Panoptic FPN (panoptic), a light Segment Anything measured in clicks (promptable), or the "
                                   "light Mask R-CNN on synthetic videos, then tracking the validation videos (video: HOTA, "
                                   "IDF1, MOTSA, J&F).")
    p.add_argument("--task", choices=TASKS, default="semantic", help="what the demo learns (default semantic)")
    p.add_argument("--out", help="run directory (default runs/demo, or runs/demo-TASK for the other tasks)")
    p.add_argument("--data-dir", help="where to write the scenes: a new or empty folder (default: OUT_data beside the run)")
    p.add_argument("--train-size", type=int, help="training scenes (default 800; video: training videos, default 30)")
    p.add_argument("--val-size", type=int, help="validation scenes (default 100; video: validation videos, default 8)")
    p.add_argument("--size", type=int, help="scene side in pixels (default 64)")
    p.add_argument("--steps", type=int, help="optimiser steps (default: the demo's own, which reaches its target)")
    p.add_argument("--time-budget", type=float, metavar="SECONDS", help="an optional cap on training time")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE", help="print metrics as JSON (or write FILE)")


def run(args: argparse.Namespace, console: Console) -> int:
    from omniseg.engine.demo import run_demo

    quiet_libraries()
    start = time.monotonic()
    result = run_demo(args.task, out=args.out, data_dir=args.data_dir, train_scenes=args.train_size, val_scenes=args.val_size,
                      size=args.size, steps=args.steps, time_budget=args.time_budget, progress=not args.no_progress)
    if result is None:
        return 0
    if args.json == "-":
        emit_json(console, result.metrics, "-")
        return 0
    print_any_report(console, result.metrics, title=f"Demo ({args.task}): synthetic shapes, validation split")
    if args.task == "video":
        print_any_report(console, result.metrics["video"], title="Tracking the validation videos")
    plots = {"semantic": "curves.png, confusion.png, samples/", "promptable": "curves.png, clicks.png, samples/",
             "video": "curves.png, samples/, tracks_val/<video>/overlay.mp4 and contact_sheet.png, video_metrics.json"}.get(
        args.task, "curves.png, samples/")
    console.print(f"run directory: [bold]{result.run_dir}[/] (report.html, metrics.json, {plots})  {result.global_step} "
                  f"steps, total {time.monotonic() - start:.0f} s")
    emit_json(console, result.metrics, args.json)
    return 0
