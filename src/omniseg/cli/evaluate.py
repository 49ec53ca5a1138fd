"""``omniseg eval``: a run on a dataset split, or a folder of predicted masks against ground truth."""

from __future__ import annotations

import argparse

from rich.console import Console

from omniseg.cli.output import add_device_argument, emit_json, print_any_report, progress_bar
from omniseg.errors import ConfigError


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(
        name,
        help="evaluate a run or a folder of predictions",
        description="Evaluate RUN_DIR on --data, compare --pred PNG masks with --gt PNG masks (matched by name), or with "
                    "--unsupervised compare --pred segmentation PNGs with the human segmentations of a BSDS folder --gt.",
    )
    p.add_argument("run_dir", nargs="?", help="run directory written by `omniseg train`, or a Segment Anything checkpoint "
                   "file (measured in clicks); with --task video also a folder of tracked videos")
    p.add_argument("--task", choices=["video"], help="video: track every video of --data's split with the run (or read tracked "
                   "videos: <video>/masks/<frame>.png) and measure HOTA, MOTSA, IDF1, ID switches and J&F")
    p.add_argument("--arch", help="the architecture of a checkpoint file (sam_vit_b, sam_vit_l, sam_vit_h, mobile_sam, sam, "
                   "sam_timm); an official file's name gives it")
    p.add_argument("--engine", choices=["grabcut", "random-walker"], help="measure a weight-free prompt engine in clicks")
    p.add_argument("--max-clicks", type=int, default=20, help="promptable models: clicks an object gets at most (NoC "
                   "counts an object never reached as this; default 20)")
    p.add_argument("--data", help="dataset to evaluate RUN_DIR on (default: the run's own data, read as in training)")
    p.add_argument("--format", help="force a dataset format (default: the run's own for its data, else detected)")
    p.add_argument("--split", default="val", help="split of --data (default val)")
    p.add_argument("--pred", help="folder of predicted class-index PNGs")
    p.add_argument("--gt", help="folder of ground-truth class-index PNGs")
    p.add_argument("--unsupervised", action="store_true", help="--pred holds segmentations (region ids or colours) and --gt "
                   "is a BSDS folder: PRI, VoI, covering and boundary precision/recall/F")
    p.add_argument("--tolerance", type=float, default=0.0075, help="with --unsupervised: boundary match distance as a "
                   "fraction of the image diagonal (BSDS: 0.0075)")
    p.add_argument("--num-classes", type=int, help="classes of --pred/--gt (default: largest label + 1)")
    p.add_argument("--ignore-index", type=int, help="the mask value of unlabelled pixels, left out of the metrics: with RUN_DIR "
                   "it replaces the dataset's own; with --pred/--gt it defaults to 255")
    p.add_argument("--batch-size", type=int, default=4)
    add_device_argument(p)
    p.add_argument("--json", nargs="?", const="-", metavar="FILE", help="print metrics as JSON (or write FILE)")
    DEFAULTS.update((action.dest, action.default) for action in p._actions)


# options that only one way of evaluating takes: given a value other than their default elsewhere, they are refused
FOLDER_ONLY = ("num_classes",)
UNSUPERVISED_ONLY = ("tolerance",)
MODEL_ONLY = ("arch", "engine", "max_clicks", "data", "format", "split", "batch_size", "device")
DEFAULTS: dict[str, object] = {}  # the parser's own defaults, read when it is built


def _refuse(args: argparse.Namespace, options: tuple[str, ...], why: str) -> None:
    given = [f"--{name.replace('_', '-')}" for name in options if getattr(args, name) != DEFAULTS[name]]
    if given:
        raise ConfigError(f"{', '.join(given)} cannot be honoured {why}; leave {'it' if len(given) == 1 else 'them'} out")


def run(args: argparse.Namespace, console: Console) -> int:
    if args.task == "video":
        return _run_video(args, console)
    if not args.unsupervised:
        _refuse(args, UNSUPERVISED_ONLY, "without --unsupervised")
    if args.pred or args.gt or args.unsupervised:
        _refuse(args, MODEL_ONLY, "when comparing --pred with --gt (those evaluate a model)")
    else:
        _refuse(args, FOLDER_ONLY, "when evaluating a model (it reads the classes from the run)")
    if args.unsupervised:
        _refuse(args, ("num_classes", "ignore_index"), "with --unsupervised (regions have no classes)")
        return _run_unsupervised(args, console)
    if args.pred or args.gt:
        if not (args.pred and args.gt) or args.run_dir:
            raise ConfigError("folder evaluation needs both --pred DIR and --gt DIR, and no RUN_DIR")
        from omniseg.data.sample import DEFAULT_IGNORE_INDEX
        from omniseg.inference import evaluate_folders

        ignore_index = DEFAULT_IGNORE_INDEX if args.ignore_index is None else args.ignore_index
        report = evaluate_folders(args.pred, args.gt, num_classes=args.num_classes, ignore_index=ignore_index)
        title = f"{args.pred} vs {args.gt}"
    else:
        if not (args.run_dir or (args.engine and args.data)):
            raise ConfigError("pass RUN_DIR (its own data, or --data PATH), --engine NAME --data PATH, or --pred DIR --gt DIR")
        from omniseg.inference import evaluate_run

        report = evaluate_run(args.run_dir, args.data, split=args.split, format=args.format, batch_size=args.batch_size,
                              ignore_index=args.ignore_index, arch=args.arch, engine=args.engine, max_clicks=args.max_clicks,
                              device=args.device)
        title = f"{args.run_dir or args.engine} on {args.data or 'its own data'} ({args.split})"
    return _print(console, report, title, args.json)


def _print(console: Console, report: dict, title: str, json_target: str | None) -> int:
    if json_target == "-":
        emit_json(console, report, "-")
        return 0
    print_any_report(console, report, title=title)
    emit_json(console, report, json_target)
    return 0


def _run_unsupervised(args: argparse.Namespace, console: Console) -> int:
    from omniseg.inference import evaluate_unsupervised

    if not (args.pred and args.gt) or args.run_dir or args.data:
        raise ConfigError("--unsupervised compares --pred DIR (segmentation PNGs) with --gt BSDS_PATH, and takes no RUN_DIR or --data")
    with progress_bar(console, "evaluating", disable=args.json == "-") as progress:
        report = evaluate_unsupervised(args.pred, args.gt, tolerance=args.tolerance, progress=progress)
    return _print(console, report, f"{args.pred} vs {args.gt}", args.json)


def _run_video(args: argparse.Namespace, console: Console) -> int:
    from omniseg.inference.evaluate.video import evaluate_video

    if not (args.run_dir and args.data) or args.pred or args.gt or args.unsupervised:
        raise ConfigError("--task video evaluates RUN_OR_PREDICTIONS on --data DATA (a video dataset); it takes no --pred, --gt "
                          "or --unsupervised")
    _refuse(args, ("arch", "engine", "max_clicks", "num_classes", "ignore_index", "tolerance", "batch_size"), "with --task video")
    with progress_bar(console, "tracking", disable=args.json == "-") as progress:
        report = evaluate_video(args.run_dir, args.data, split=args.split, format=args.format or "auto", device=args.device,
                                progress=progress)
    return _print(console, report, f"{args.run_dir} on {args.data} ({args.split})", args.json)
