"""``omniseg demo``: generate the synthetic shapes, train a small U-Net, evaluate, write runs/demo."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console

from omniseg.cli.output import emit_json, print_report, quiet_libraries
from omniseg.config import DataConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig


DEMO_TRAIN, DEMO_VAL, DEMO_SIZE, DEMO_EPOCHS, DEMO_BUDGET = 800, 100, 64, 28, 155.0


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="train and evaluate on the embedded synthetic data",
                       description="Generate synthetic shape scenes, train a small U-Net on them and evaluate it.")
    p.add_argument("--out", default="runs/demo", help="run directory (default runs/demo)")
    p.add_argument("--data-dir", help="where to write the scenes (default: OUT_data beside the run)")
    p.add_argument("--train-size", type=int, default=DEMO_TRAIN, help="training scenes")
    p.add_argument("--val-size", type=int, default=DEMO_VAL, help="validation scenes")
    p.add_argument("--size", type=int, default=DEMO_SIZE, help="scene side in pixels")
    p.add_argument("--epochs", type=int, default=DEMO_EPOCHS)
    p.add_argument("--time-budget", type=float, default=DEMO_BUDGET, metavar="SECONDS", help="training time cap")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE", help="print metrics as JSON (or write FILE)")


def demo_config(data: Path, out: str, *, size: int, epochs: int, time_budget: float | None) -> RunConfig:
    """The demo's configuration: a 4-level U-Net of width 16, CE + Dice, AdamW with a poly schedule.

    The scenes already vary colour, so the demo skips colour jitter (about a fifth of the CPU time of
    a step here) and keeps the rescaling mild; ``--time-budget`` caps the training time.
    """
    return RunConfig(
        data=DataConfig(path=str(data), img_size=size, scale_range=(0.9, 1.15), batch_size=8, eval_batch_size=50,
                        color_jitter=0.0),
        model=ModelConfig(name="unet", kwargs={"depth": 4, "base_channels": 16, "upsampling": "bilinear"}),
        optim=OptimConfig(lr=4e-3, weight_decay=1e-4, schedule="poly", warmup_steps=50),
        train=TrainConfig(epochs=epochs, time_budget=time_budget, out=out, seed=0),
    )


def run(args: argparse.Namespace, console: Console) -> int:
    from omniseg.data.synthetic import write_synthetic
    from omniseg.engine import train

    quiet_libraries()
    start = time.monotonic()
    data = Path(args.data_dir or f"{args.out.rstrip('/')}_data")
    console.print(f"generating {args.train_size} + {args.val_size} synthetic scenes in [bold]{data}[/] ...")
    if data.exists():
        import shutil

        shutil.rmtree(data)
    write_synthetic(data, splits={"train": args.train_size, "val": args.val_size}, size=args.size, seed=0)
    config = demo_config(data, args.out, size=args.size, epochs=args.epochs, time_budget=args.time_budget)
    result = train(config, overwrite=True, progress=not args.no_progress)
    if result is None:
        return 0
    if args.json == "-":
        emit_json(console, result.metrics, "-")
        return 0
    print_report(console, result.metrics, title="Demo: synthetic shapes, validation split")
    console.print(
        f"run directory: [bold]{result.run_dir}[/] (metrics.json, curves.png, confusion.png, samples/)  "
        f"total {time.monotonic() - start:.0f} s"
    )
    emit_json(console, result.metrics, args.json)
    return 0
