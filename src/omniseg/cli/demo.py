"""``omniseg demo``: generate the synthetic shapes, train a small model on them, evaluate, write the run.

``--task semantic`` (the default) trains a small U-Net, ``--task instance`` a light Mask R-CNN and
``--task panoptic`` a light Panoptic FPN, each within a time budget on a CPU.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from omniseg.cli.output import emit_json, print_any_report, quiet_libraries
from omniseg.config import DataConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig


@dataclass(frozen=True)
class DemoPlan:
    """What each demo trains on and for how long (seconds of training; the total adds data and evaluation)."""

    out: str
    budget: float
    epochs: int
    train_scenes: int = 800
    val_scenes: int = 100
    size: int = 64


PLANS = {
    "semantic": DemoPlan("runs/demo", budget=155.0, epochs=28),
    "instance": DemoPlan("runs/demo-instance", budget=390.0, epochs=1000),
    "panoptic": DemoPlan("runs/demo-panoptic", budget=480.0, epochs=1000),
}

# A light Mask R-CNN for 64-pixel scenes with up to four shapes: ResNet-18 with a 64-channel FPN, anchors
# from 8 px, few proposals and sampled RoIs, narrow heads, adaptive RoIAlign sampling (one point per bin
# on these small objects); a detector of the paper's widths takes about 5x as long a step here.
LIGHT_DETECTOR = {
    "anchor_sizes": "small", "fpn_channels": 64, "box_head_size": 256, "mask_head_channels": 64, "mask_head_layers": 2,
    "rpn_pre_nms_top_n_train": 300, "rpn_post_nms_top_n_train": 100, "box_batch_size_per_image": 32,
    "roi_sampling_ratio": 0, "detections_per_image": 20,
}


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="train and evaluate on the embedded synthetic data",
                       description="Generate synthetic shape scenes, train a small model on them and evaluate it: "
                                   "a U-Net (semantic), a light Mask R-CNN (instance) or a light Panoptic FPN (panoptic).")
    p.add_argument("--task", choices=list(PLANS), default="semantic", help="what the demo learns (default semantic)")
    p.add_argument("--out", help="run directory (default runs/demo, runs/demo-instance or runs/demo-panoptic)")
    p.add_argument("--data-dir", help="where to write the scenes (default: OUT_data beside the run)")
    p.add_argument("--train-size", type=int, help="training scenes (default 800)")
    p.add_argument("--val-size", type=int, help="validation scenes (default 100)")
    p.add_argument("--size", type=int, help="scene side in pixels (default 64)")
    p.add_argument("--epochs", type=int, help="epochs (default: as many as the time budget allows)")
    p.add_argument("--time-budget", type=float, metavar="SECONDS",
                   help="training time cap (default 155 semantic, 390 instance, 480 panoptic)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE", help="print metrics as JSON (or write FILE)")


def demo_config(task: str, data: Path, out: str, *, size: int, epochs: int, time_budget: float | None) -> RunConfig:
    """The demo's configuration for ``task``.

    Semantic: a 4-level U-Net of width 16, CE + Dice, AdamW with a poly schedule. Instance and panoptic:
    the :data:`LIGHT_DETECTOR` Mask R-CNN (plus a 32-channel semantic FPN head for panoptic), randomly
    initialised (nothing is downloaded), AdamW with warm-up and poly decay, validated every other epoch.
    The scenes already vary colour, so the demos skip colour jitter and keep the rescaling mild.
    """
    train = TrainConfig(epochs=epochs, time_budget=time_budget, out=out, seed=0)
    if task == "semantic":
        return RunConfig(
            data=DataConfig(path=str(data), img_size=size, scale_range=(0.9, 1.15), batch_size=8, eval_batch_size=50,
                            color_jitter=0.0),
            model=ModelConfig(name="unet", kwargs={"depth": 4, "base_channels": 16, "upsampling": "bilinear"}),
            optim=OptimConfig(lr=4e-3, weight_decay=1e-4, schedule="poly", warmup_steps=50),
            train=train,
        )
    model = ModelConfig(name="maskrcnn", encoder="resnet18", kwargs=dict(LIGHT_DETECTOR))
    if task == "panoptic":
        model = ModelConfig(name="panoptic_fpn", encoder="resnet18", kwargs={**LIGHT_DETECTOR, "semantic_channels": 32, "stuff_min_area": 16})
    train.val_every = 2
    return RunConfig(
        task=task,
        data=DataConfig(path=str(data), img_size=size, scale_range=(0.8, 1.25), batch_size=8, eval_batch_size=20, color_jitter=0.0),
        model=model,
        optim=OptimConfig(lr=2e-3, weight_decay=1e-4, schedule="poly", warmup_steps=100),
        train=train,
    )


def run(args: argparse.Namespace, console: Console) -> int:
    from omniseg.data.synthetic import write_synthetic
    from omniseg.engine import train

    quiet_libraries()
    start = time.monotonic()
    plan = PLANS[args.task]
    out = args.out or plan.out
    train_scenes, val_scenes = args.train_size or plan.train_scenes, args.val_size or plan.val_scenes
    size = args.size or plan.size
    data = Path(args.data_dir or f"{out.rstrip('/')}_data")
    console.print(f"generating {train_scenes} + {val_scenes} synthetic scenes in [bold]{data}[/] ...")
    if data.exists():
        import shutil

        shutil.rmtree(data)
    write_synthetic(data, splits={"train": train_scenes, "val": val_scenes}, size=size, seed=0)
    budget = args.time_budget if args.time_budget is not None else plan.budget
    config = demo_config(args.task, data, out, size=size, epochs=args.epochs or plan.epochs, time_budget=budget)
    result = train(config, overwrite=True, progress=not args.no_progress)
    if result is None:
        return 0
    if args.json == "-":
        emit_json(console, result.metrics, "-")
        return 0
    print_any_report(console, result.metrics, title=f"Demo ({args.task}): synthetic shapes, validation split")
    plots = "curves.png, confusion.png, samples/" if args.task == "semantic" else "curves.png, samples/"
    console.print(f"run directory: [bold]{result.run_dir}[/] (metrics.json, {plots})  total {time.monotonic() - start:.0f} s")
    emit_json(console, result.metrics, args.json)
    return 0
