"""omniseg against forty lines of plain PyTorch on a real dataset, at the same time budget, in the same run.

The peer is the loop a practitioner writes first: segmentation_models_pytorch's ``Unet("resnet18")``,
randomly initialised, CE + Dice, random 256 x 256 crops, batch 8, AdamW at 1e-3, flips and quarter turns,
no validation, trained until the budget is spent, then scored on the val split at full size. Against it:

- ``omniseg``: ``omniseg train --data DATA --time-budget S`` (the plan from the dataset's fingerprint, its
  precision ``auto``: bfloat16 where a measured step is faster);
- ``omniseg-32``: the same with ``--precision 32`` (float32 whatever the processor), for the precision's effect;
- ``omniseg-same``: ``omniseg train --no-plan`` with the peer's exact recipe (``--model unet --encoder
  resnet18 --img-size 256 --batch-size 8 --lr 1e-3``, AdamW's default decay, a constant rate, crops at the
  images' resolution, flips and quarter turns) and a validation every 50 steps, which measures the
  engine's own cost: its steps per second against the peer's.

Runs alternate (peer, omniseg, omniseg-same for seed 0, then seed 1, ...), each in a fresh process, so
that the machine's drift touches every side alike. Scores: per-class IoU, mIoU and pixel accuracy of the
val split, from the same confusion matrix code for every side.

    python benchmarks/real_data.py --data ../shared/data/isbi2012 --budget 300 --seeds 3
    python benchmarks/real_data.py --sides omniseg-32,omniseg --name precision_isbi2012   # float32 against auto

Writes ``benchmarks/results/real_data.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
SIDES = ("peer", "omniseg", "omniseg-same", "omniseg-32")


def plain_loop(data: str, budget: float, seed: int) -> dict:
    """The peer: trains for ``budget`` seconds (checked between steps), then scores the val split."""
    import numpy as np
    import segmentation_models_pytorch as smp
    import torch
    import torch.nn.functional as F

    from omniseg.data.formats import load_dataset
    from omniseg.metrics import ConfusionMatrix, metrics_from_confusion

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    source = load_dataset(data)
    info = source.info

    def arrays(split: str) -> tuple[list, list]:
        samples = [source.dataset(split)[i] for i in range(len(source.dataset(split)))]
        return [s["image"].float() / 255 for s in samples], [s["mask"].long() for s in samples]

    train_images, train_masks = arrays("train")
    channels = train_images[0].shape[0]
    model = smp.Unet("resnet18", encoder_weights=None, in_channels=channels, classes=info.num_classes)
    dice = smp.losses.DiceLoss("multiclass", ignore_index=info.ignore_index)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    crop, batch = 256, 8

    def sample() -> tuple[torch.Tensor, torch.Tensor]:
        i = rng.integers(len(train_images))
        image, mask = train_images[i], train_masks[i]
        h, w = mask.shape
        pad_h, pad_w = max(crop - h, 0), max(crop - w, 0)
        if pad_h or pad_w:
            image = F.pad(image, (0, pad_w, 0, pad_h))
            mask = F.pad(mask, (0, pad_w, 0, pad_h), value=info.ignore_index)
        top, left = rng.integers(mask.shape[0] - crop + 1), rng.integers(mask.shape[1] - crop + 1)
        image, mask = image[:, top : top + crop, left : left + crop], mask[top : top + crop, left : left + crop]
        if rng.random() < 0.5:
            image, mask = image.flip(-1), mask.flip(-1)
        if rng.random() < 0.5:
            image, mask = image.flip(-2), mask.flip(-2)
        k = int(rng.integers(4))
        return image.rot90(k, (-2, -1)), mask.rot90(k, (-2, -1))

    model.train()
    steps, start = 0, time.monotonic()
    while time.monotonic() - start < budget:
        pairs = [sample() for _ in range(batch)]
        x, y = torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
        logits = model(x)
        loss = F.cross_entropy(logits, y, ignore_index=info.ignore_index) + dice(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
    seconds = time.monotonic() - start
    model.eval()
    confusion = ConfusionMatrix(info.num_classes, ignore_index=info.ignore_index)
    with torch.no_grad():
        for image, mask in zip(*arrays("val")):
            h, w = mask.shape
            x = F.pad(image[None], (0, -w % 32, 0, -h % 32), mode="reflect")
            confusion.update(model(x)[0, :, :h, :w].argmax(0)[None], mask[None])
    metrics = metrics_from_confusion(confusion.matrix, ignore_index=info.ignore_index)
    return {"steps": steps, "train_seconds": seconds, "iou": metrics["per_class_iou"], "miou": metrics["miou"],
            "pixel_accuracy": metrics["pixel_accuracy"], "class_names": info.class_names}


def omniseg_run(data: str, budget: float, seed: int, same: bool, precision: str | None = None) -> dict:
    """``omniseg train`` as a user runs it, in this process's interpreter; its metrics.json."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        command = [sys.executable, "-m", "omniseg.cli.main", "train", "--data", data, "--time-budget", str(budget),
                   "--seed", str(seed), "--out", str(out), "--no-progress", *(["--precision", precision] if precision else [])]
        if same:
            command += ["--no-plan", "--model", "unet", "--encoder", "resnet18", "--img-size", "256", "--batch-size", "8",
                        "--lr", "1e-3", "--set", "data.scale_range=[1.0,1.0]", "--set", "data.fit_to_crop=false",
                        "--set", "data.color_jitter=0.0", "--set", "data.rot90=true", "--set", "data.vflip=true",
                        "--set", "optim.weight_decay=0.01", "--set", "optim.schedule=constant",
                        "--set", "train.val_every_steps=50"]
        start = time.monotonic()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        wall = time.monotonic() - start
        metrics = json.loads((out / "metrics.json").read_text())
    per_class = metrics["per_class"]
    return {"steps": metrics["global_step"], "train_seconds": metrics["train_seconds"], "wall_seconds": wall,
            "iou": [c["iou"] for c in per_class], "miou": metrics["miou"], "pixel_accuracy": metrics["pixel_accuracy"],
            "class_names": [c["name"] for c in per_class], "plan": metrics.get("plan"), "precision": metrics.get("precision"),
            "loader_wait_share": metrics.get("loader_wait_share"), "loop_share": metrics.get("loop_share")}


def worker(args: argparse.Namespace) -> None:
    if args.worker == "peer":
        result = plain_loop(args.data, args.budget, args.seed)
    else:
        result = omniseg_run(args.data, args.budget, args.seed, same=args.worker == "omniseg-same",
                             precision="32" if args.worker == "omniseg-32" else None)
    print("RESULT " + json.dumps(result))


def run_side(side: str, args: argparse.Namespace, seed: int) -> dict:
    command = [sys.executable, __file__, "--worker", side, "--data", args.data, "--budget", str(args.budget), "--seed", str(seed)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(next(line for line in output.splitlines() if line.startswith("RESULT "))[7:])


def summarise(runs: list[dict]) -> dict:
    def stat(values: list[float]) -> dict:
        return {"mean": statistics.fmean(values), "spread": (max(values) - min(values)) / 2, "values": values}

    names = runs[0]["class_names"]
    summary = {"steps": stat([r["steps"] for r in runs]), "miou": stat([r["miou"] for r in runs]),
               "pixel_accuracy": stat([r["pixel_accuracy"] for r in runs]),
               "steps_per_second": stat([r["steps"] / r["train_seconds"] for r in runs])}
    if runs[0].get("loader_wait_share") is not None:
        summary["loader_wait_share"] = stat([r["loader_wait_share"] for r in runs])
    for k, name in enumerate(names):
        summary[f"iou_{name}"] = stat([r["iou"][k] for r in runs])
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).parents[1] / ".." / "shared" / "data" / "isbi2012"))
    parser.add_argument("--budget", type=float, default=300.0, help="seconds of training per run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sides", default=",".join(SIDES), help="which of peer, omniseg, omniseg-same to run")
    parser.add_argument("--name", default="real_data", help="results file name")
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    from rich.console import Console
    from rich.table import Table

    sides = args.sides.split(",")
    runs: dict[str, list[dict]] = {side: [] for side in sides}
    for seed in range(args.seeds):
        for side in sides:
            result = run_side(side, args, seed)
            runs[side].append(result)
            print(f"seed {seed} {side}: {result['steps']} steps, mIoU {result['miou']:.3f}, IoU {[round(v, 3) for v in result['iou']]}"
                  + (f", {result['precision']['chosen']}, loader wait {result['loader_wait_share']:.3f}" if result.get("precision") else ""),
                  flush=True)
    summary = {side: summarise(side_runs) for side, side_runs in runs.items()}
    names = runs[sides[0]][0]["class_names"]
    table = Table(title=f"{Path(args.data).name}: {args.budget:.0f} s of training each, {args.seeds} seeds (mean ± half-range)")
    columns = ["steps", "steps_per_second", *[f"iou_{n}" for n in names], "miou", "pixel_accuracy"]
    columns += ["loader_wait_share"] if all("loader_wait_share" in summary[side] for side in sides) else []
    for column in ["run", *columns]:
        table.add_column(column)
    lines = ["| run | " + " | ".join(columns) + " |", "|" + " --- |" * (len(columns) + 1)]
    for side in sides:
        cells = [f"{summary[side][c]['mean']:.3f} ± {summary[side][c]['spread']:.3f}" for c in columns]
        table.add_row(side, *cells)
        lines.append(f"| {side} | " + " | ".join(cells) + " |")
    Console().print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps({"data": args.data, "budget": args.budget, "summary": summary, "runs": runs}, indent=2))
    (RESULTS / f"{args.name}.md").write_text("\n".join([table.title, "", *lines, ""]))


if __name__ == "__main__":
    main()
