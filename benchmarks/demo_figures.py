"""The demos' figures: steps, wall time and quality of ``omniseg demo`` for each task, several runs each.

Each run is the real command in a fresh process, with fresh scenes (data generation and the report count),
so the wall time is what a new user waits. Machines of the same kind differ up to 5x in speed from one day
to the next (and drift within minutes), so the script times a reference workload just before and just
after each run, the training step the issue measured its machine by (the former demo's U-Net: depth 4,
width 16, batch 8 of 64x64, AdamW), and scales each wall time to that machine (0.17 s a step) by the mean
of the two: ``normalised = wall * 0.17 / reference``.

    python benchmarks/demo_figures.py                      # 3 runs of each demo
    python benchmarks/demo_figures.py --tasks promptable --runs 3

Writes ``benchmarks/results/demo_figures.json`` (the tasks run replace their rows; the others are kept).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from omniseg.losses import build_loss
from omniseg.models import create_model

REFERENCE_STEP = 0.17  # seconds: the machine ran the former demo U-Net's training step in 0.15-0.19 s
TARGETS = {"semantic": ("miou", 0.85, 150), "instance": ("mask AP50", 0.70, 360), "panoptic": ("PQ", 0.50, 480),
           "promptable": ("mIoU@1", 0.85, 480), "video": ("HOTA", 0.75, 360)}


def reference_step(repeats: int = 40) -> float:
    """Seconds per training step of the former demo U-Net (the issue's yardstick), median of three rounds."""
    torch.manual_seed(0)
    model = create_model("unet", num_classes=5, depth=4, base_channels=16, upsampling="bilinear").to(memory_format=torch.channels_last)
    loss = build_loss("ce+dice", ignore_index=255)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    x = torch.randn(8, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 5, (8, 64, 64))
    rounds = []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            value = loss(model(x), y)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
        rounds.append((time.perf_counter() - start) / repeats)
    return statistics.median(rounds)


def metric(task: str, metrics: dict) -> float:
    if task == "semantic":
        return metrics["miou"]
    if task == "instance":
        return metrics["segm"]["AP50"]
    if task == "promptable":
        return metrics["mIoU@1"]
    if task == "video":
        return metrics["video"]["HOTA"]
    return metrics["panoptic"]["all"]["pq"]


def run_demo(task: str, work: Path, number: int) -> dict:
    out, data = work / f"{task}-{number}", work / f"{task}-{number}_data"
    command = [sys.executable, "-m", "omniseg.cli.main", "demo", "--task", task, "--out", str(out), "--data-dir", str(data),
               "--no-progress", "--json", str(work / f"{task}-{number}.json")]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"omniseg demo --task {task} failed:\n{done.stderr[-3000:]}")
    metrics = json.loads((work / f"{task}-{number}.json").read_text())
    row = {"run": number, "steps": metrics["global_step"], "wall_seconds": round(wall, 1),
           "train_seconds": metrics["train_seconds"], "value": round(metric(task, metrics), 4)}
    if task == "video":  # the second figure, and the rest of the tracking measures
        row |= {k: round(metrics["video"][k], 4) for k in ("IDF1", "DetA", "AssA", "MOTSA", "J&F")}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="semantic,instance,panoptic,promptable,video")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "demo_figures.json"))
    args = parser.parse_args()
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="omniseg-demo-"))
    previous = Path(args.out)
    results = json.loads(previous.read_text()) if previous.is_file() else {"tasks": {}}  # other tasks' runs are kept
    references = []
    try:
        for task in args.tasks.split(","):
            rows = []
            for number in range(1, args.runs + 1):
                before = reference_step()  # the machine's speed on both sides of the run
                row = run_demo(task, work, number)
                after = reference_step()
                references += [before, after]
                row["reference_step_seconds"] = [round(before, 4), round(after, 4)]
                row["normalised_wall_seconds"] = round(row["wall_seconds"] * REFERENCE_STEP / ((before + after) / 2), 1)
                rows.append(row)
                console.print(f"{task} run {number}: {row}")
            results["tasks"][task] = rows
    finally:
        shutil.rmtree(work, ignore_errors=True)
    reference = statistics.median(references)
    table = Table(title=f"omniseg demo (reference step {reference * 1000:.0f} ms here; the issue's machine: {REFERENCE_STEP * 1000:.0f} ms)")
    for column in ("task", "run", "steps", "wall s", "normalised s", "target s", "metric", "value", "target"):
        table.add_column(column, justify="left" if column in ("task", "metric") else "right")
    for task, rows in results["tasks"].items():
        if task not in args.tasks.split(","):
            continue
        name, floor, seconds = TARGETS[task]
        for row in rows:
            table.add_row(task, str(row["run"]), str(row["steps"]), f"{row['wall_seconds']:.0f}", f"{row['normalised_wall_seconds']:.0f}",
                          f"<= {seconds}", name, f"{row['value']:.3f}", f">= {floor}")
    console.print(table)
    results["machine"] = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
