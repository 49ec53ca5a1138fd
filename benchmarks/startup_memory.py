"""Start-up and prediction memory, as a new user meets them: ``omniseg --version``, ``omniseg train --help`` and
``import omniseg`` (seconds, best of three, and peak RSS) against ``import torch`` in the same run; then ``omniseg
predict RUN IMAGE --tile 512`` on a 4096 x 4096 PNG and JPEG against the same command on a 64 x 64 PNG (peak RSS of
each process: the difference is what the prediction holds for a large image). The model is a small U-Net (depth 3,
16 base channels) saved untrained: memory and time do not depend on its weights. Each command runs in its own
process; prints a table and saves JSON; nothing is asserted.

    python benchmarks/startup_memory.py [--out benchmarks/results/startup_memory.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

# runs COMMAND as a child and prints its peak RSS in MB (a fresh wrapper, so the maximum is that child's alone)
WRAPPER = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)")
OMNISEG = [sys.executable, "-c", "import sys; from omniseg.cli.main import main; sys.exit(main(sys.argv[1:]))"]


def measure(command: list[str], repeats: int = 3) -> tuple[float, float]:
    """(best wall seconds, peak RSS MB of the last run) of ``command``."""
    best, peak = float("inf"), 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", WRAPPER, *command], check=True, capture_output=True, text=True)
        best = min(best, time.perf_counter() - start)
        peak = float(result.stdout.strip().splitlines()[-1])
    return best, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/startup_memory.json")
    args = parser.parse_args()
    console = Console()
    rows = {}
    for name, command in (("python -c pass", [sys.executable, "-c", "pass"]),
                          ("import torch", [sys.executable, "-c", "import torch"]),
                          ("import omniseg", [sys.executable, "-c", "import omniseg"]),
                          ("omniseg --version", [*OMNISEG, "--version"]),
                          ("omniseg train --help", [*OMNISEG, "train", "--help"])):
        rows[name] = dict(zip(("seconds", "peak_mb"), measure(command)))
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        _write_inputs(root)
        for name in ("small.png", "big.png", "big.jpg"):
            out = root / f"out_{name}"
            command = [*OMNISEG, "predict", str(root / "run"), str(root / name), "--out", str(out), "--tile", "512",
                       "--device", "cpu", "--overwrite"]
            rows[f"predict {name}"] = dict(zip(("seconds", "peak_mb"), measure(command, repeats=1)))
    for name in ("big.png", "big.jpg"):
        rows[f"predict {name}"]["over_64px_mb"] = rows[f"predict {name}"]["peak_mb"] - rows["predict small.png"]["peak_mb"]
    table = Table(title="start-up and prediction memory (each command its own process)")
    for column in ("command", "seconds", "peak RSS (MB)", "over the 64 px prediction (MB)"):
        table.add_column(column, justify="left" if column == "command" else "right")
    for name, row in rows.items():
        over = row.get("over_64px_mb")
        table.add_row(name, f"{row['seconds']:.2f}", f"{row['peak_mb']:.0f}", "" if over is None else f"{over:.0f}")
    console.print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"rows": rows, "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                                                  "processor": platform.processor()}}, indent=2))
    console.print(f"wrote {args.out}")


def _write_inputs(root: Path) -> None:
    import torch
    from PIL import Image

    from omniseg.core.info import DatasetInfo
    from omniseg.models import ModelCard, create_model, save_model

    torch.manual_seed(0)
    kwargs = {"num_classes": 3, "depth": 3, "base_channels": 16}
    save_model(create_model("unet", **kwargs), root / "run", ModelCard("unet", kwargs, DatasetInfo(["a", "b", "c"], ignore_index=255),
               preprocessing={"mean": [0.5] * 3, "std": [0.25] * 3, "img_size": 512}))
    rng = np.random.default_rng(0)
    big = (rng.random((4096, 4096, 3)) * 40 + np.linspace(0, 200, 4096)[None, :, None]).astype(np.uint8)
    Image.fromarray(big).save(root / "big.png", compress_level=1)
    Image.fromarray(big).save(root / "big.jpg", quality=90)
    Image.fromarray(big[:64, :64]).save(root / "small.png")


if __name__ == "__main__":
    main()
