"""``omniseg train``: train a model on a dataset and write a run directory."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from omniseg.cli.output import add_device_argument, emit_json, print_any_report, quiet_libraries

if TYPE_CHECKING:
    from omniseg.config import RunConfig
    from omniseg.plan import Candidate, Plan


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="train a model", description="Train a segmentation model and write a run directory.")
    p.add_argument("--task", choices=["semantic", "instance", "panoptic", "promptable"],
                   help="what to learn (default semantic); promptable: Segment Anything from simulated clicks and boxes "
                   "on any instance data")
    p.add_argument("--data", help="dataset folder (format detected)")
    p.add_argument("--format", help="force a dataset format (default: auto)")
    p.add_argument("--ignore-index", type=int, help="the mask value of unlabelled pixels, which no loss or metric counts "
                   "(default: the dataset's own, e.g. classes.json's ignore_index, else 255)")
    p.add_argument("--model", help="architecture name (see `omniseg models`)")
    p.add_argument("--encoder", help="timm encoder name, e.g. resnet34")
    p.add_argument("--encoder-weights", help="'imagenet' (timm, online) or a .safetensors/.pth weights file")
    p.add_argument("--checkpoint", help="promptable: start from this Segment Anything checkpoint (official .pth, "
                   "or an omniseg model.safetensors)")
    p.add_argument("--freeze", help="promptable: parts kept as they are, comma-separated: image_encoder, prompt_encoder, "
                   "mask_decoder (image_encoder,prompt_encoder trains the decoder alone)")
    p.add_argument("--lora-rank", type=int, help="promptable: low-rank adapters of this rank on the image encoder's "
                   "attention instead of training all of it (for small data)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--epochs", type=int, help="number of epochs")
    group.add_argument("--time-budget", type=float, metavar="SECONDS", help="train for this long, keep the best weights")
    p.add_argument("--img-size", type=int, help="training crop size")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--loss", help="e.g. ce, focal, dice, ce+dice, 1.0*ce+0.5*dice")
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--devices", type=int, help="processes / GPUs (DDP when > 1; gloo on CPU)")
    p.add_argument("--seed", type=int)
    p.add_argument("--precision", choices=["auto", "32", "bf16-mixed", "16-mixed"], help="training precision: 'auto' (the "
                   "plan's default) measures a step of the model in float32 and bfloat16 and trains in bfloat16 where it is "
                   "faster by 1.3x (never on a processor without bfloat16 instructions; on GPUs bfloat16, or float16 with a "
                   "gradient scaler); losses, metrics and softmaxes stay float32. Without a plan the default is 32")
    p.add_argument("--workers", type=int, help="data loader workers")
    p.add_argument("--out", help="run directory (default runs/train)")
    p.add_argument("--config", help="YAML config file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key, e.g. optim.lr=0.01")
    p.add_argument("--no-plan", action="store_true", help="omniseg's fixed defaults instead of a plan from the dataset's "
                   "fingerprint (see `omniseg plan`)")
    add_device_argument(p, "the device that trains (and that the plan measures)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.ckpt")
    p.add_argument("--overwrite", action="store_true", help="replace the run files already in OUT")
    p.add_argument("--logger", help="experiment trackers, comma-separated: csv (history.csv, always written), tensorboard, "
                   "mlflow (a SQLite store in the run), wandb (offline unless WANDB_MODE says otherwise); extras of the same names")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE", help="print the final metrics as JSON (or write FILE)")


FLAG_KEYS = {
    "task": "task", "data": "data.path", "format": "data.format", "ignore_index": "data.ignore_index", "model": "model.name", "encoder": "model.encoder",
    "encoder_weights": "model.encoder_weights", "epochs": "train.epochs", "time_budget": "train.time_budget",
    "img_size": "data.img_size", "batch_size": "data.batch_size", "loss": "loss.name", "lr": "optim.lr",
    "devices": "train.devices", "seed": "train.seed", "workers": "data.num_workers", "out": "train.out", "logger": "train.logger",
    "checkpoint": "model.kwargs.checkpoint", "lora_rank": "prompt.lora_rank", "precision": "train.precision",
}
#: the model a promptable run trains when none is named: SAM's decoder on a light timm encoder
PROMPTABLE_MODEL = "sam_timm"


def config_from_args(args: argparse.Namespace) -> tuple[RunConfig, Plan | None]:
    """Defaults < the plan (``--data`` without ``--no-plan``) < ``--config`` file < flags < ``--set``; returns the
    config and the plan it started from. The model the user names (any ``model.*`` key) is measured and planned
    around instead of the plan's own choice; ``--epochs`` replaces the plan's step count and validation cadence
    (a validation an epoch). ``--resume`` reuses the run's plan."""
    from omniseg.config import RunConfig, apply_values, flatten, load_values, parse_overrides
    from omniseg.core.device import resolve_device
    from omniseg.plan import Plan, make_plan

    user = flatten(load_values(args.config)) if args.config else {}
    user.update({key: getattr(args, flag) for flag, key in FLAG_KEYS.items() if getattr(args, flag, None) is not None})
    if "train.time_budget" in user:
        user.setdefault("train.epochs", None)  # the budget decides when to stop
    if getattr(args, "freeze", None):
        user["prompt.freeze"] = [part.strip() for part in args.freeze.split(",") if part.strip()]
    user.update(parse_overrides(list(args.set)))
    device = resolve_device(getattr(args, "device", None)).type
    if getattr(args, "device", None):
        user.setdefault("train.accelerator", device)
    plan, base = None, RunConfig()
    data = user.get("data.path")
    if user.get("task") == "promptable":  # the planner plans semantic, instance and panoptic runs
        if "model.name" not in user:  # an official checkpoint's file name tells its architecture
            from omniseg.models.promptable.sam import OFFICIAL_ARCHITECTURE

            checkpoint = Path(str(user.get("model.kwargs.checkpoint", ""))).name
            user["model.name"] = OFFICIAL_ARCHITECTURE.get(checkpoint, PROMPTABLE_MODEL)
        return apply_values(base, user, source="option"), None
    if data is not None and not args.no_plan:
        task = user.get("task", "semantic")
        out = user.get("train.out", RunConfig().train.out)
        if args.resume and (Path(out) / "plan.json").is_file():
            plan = Plan.load(Path(out))
        else:
            plan = make_plan(data, task=task, time_budget=user.get("train.time_budget"), device=device,
                             format=user.get("data.format", "auto"), ignore_index=user.get("data.ignore_index"),
                             model=_users_model(user), precision=user.get("train.precision", "auto"))
        by_epochs = ("train.max_steps", "train.val_every_steps") if user.get("train.epochs") else ()
        planned = {k: v for k, v in plan.values.items() if k not in by_epochs}
        base = apply_values(RunConfig(), planned, source="plan")
    return apply_values(base, user, source="option"), plan


def _users_model(user: dict) -> Candidate | None:
    """The model the user named (name, encoder, options), which the plan measures instead of choosing one."""
    from omniseg.config import RunConfig
    from omniseg.plan import Candidate

    if not any(key.startswith("model.") for key in user):
        return None
    kwargs = {key[len("model.kwargs."):]: value for key, value in user.items() if key.startswith("model.kwargs.")}
    kwargs.update(user.get("model.kwargs") or {})
    if user.get("model.encoder"):
        kwargs["encoder"] = user["model.encoder"]
    return Candidate(user.get("model.name", RunConfig().model.name), kwargs, "the model asked for")


def run(args: argparse.Namespace, console: Console) -> int:
    from omniseg.engine import train  # Lightning is imported only by the commands that train

    quiet_libraries()

    config, plan = config_from_args(args)
    result = train(config, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress, plan=plan)
    if result is None:  # a non-zero DDP process
        return 0
    if args.json == "-":
        emit_json(console, result.metrics, "-")
        return 0
    title = f"Validation of the best weights (step {result.best_step})"
    print_any_report(console, result.metrics, title=title)
    console.print(f"run directory: [bold]{result.run_dir}[/]  ({result.global_step} steps)")
    emit_json(console, result.metrics, args.json)
    return 0
