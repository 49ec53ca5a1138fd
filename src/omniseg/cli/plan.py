"""``omniseg plan``: a dataset's fingerprint and the training plan that follows from it on this device."""

from __future__ import annotations

import argparse

from rich.console import Console

from omniseg.cli.output import add_device_argument, emit_json


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="plan training from a dataset's fingerprint",
                       description="Fingerprint a dataset (sizes, channels, intensities, classes, objects, spacing) and plan "
                                   "its training on this device: model, crop, batch, normalisation, augmentation, loss, "
                                   "schedule, validation cadence and the steps that fit the time budget, each with its reason. "
                                   "`omniseg train --data DATA` uses the same plan unless --no-plan.")
    p.add_argument("data", help="dataset folder (format detected)")
    p.add_argument("--task", choices=["semantic", "instance", "panoptic"], default="semantic")
    p.add_argument("--time-budget", type=float, metavar="SECONDS", help="seconds of training to plan for "
                   "(default: 1800 on a CPU, 3600 on a GPU, and the run is counted in the steps that fit)")
    add_device_argument(p, "the device the plan measures steps on")
    p.add_argument("--format", default="auto", help="force a dataset format")
    p.add_argument("--ignore-index", type=int, help="the mask value of unlabelled pixels (default: the dataset's own)")
    p.add_argument("--no-measure", action="store_true", help="estimate step times from operation counts instead of measuring")
    p.add_argument("--out", help="write plan.json and plan.md into this folder")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE", help="print the plan as JSON (or write FILE)")


def run(args: argparse.Namespace, console: Console) -> int:
    from rich.markdown import Markdown

    from omniseg.core.device import resolve_device
    from omniseg.plan import make_plan

    device = resolve_device(args.device).type
    plan = make_plan(args.data, task=args.task, time_budget=args.time_budget, device=device, format=args.format,
                     ignore_index=args.ignore_index, measure=not args.no_measure)
    if args.out:
        plan.save(args.out)
    if args.json == "-":
        emit_json(console, plan.to_dict(), "-")
        return 0
    console.print(Markdown(plan.explain()))
    emit_json(console, plan.to_dict(), args.json)
    return 0
