"""Kill-anywhere training as a user meets it: an 8-epoch ``omniseg train`` on synthetic scenes, run once
uninterrupted and once killed with SIGKILL partway (``--kill-at``, a fraction of the uninterrupted run's time)
then run again with ``--resume``: the time each part took and both final mIoUs, which must be equal (same seed,
deterministic CPU run). Prints the figures and saves JSON; nothing is asserted.

    python benchmarks/kill_resume.py [--kill-at 0.55] [--out benchmarks/results/kill_resume.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from omniseg.data.synthetic import write_synthetic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kill-at", type=float, default=0.55, help="when to kill, as a fraction of the uninterrupted run")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "kill_resume.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = write_synthetic(root / "scenes", splits={"train": 160, "val": 40}, size=96, seed=0)
        train = [sys.executable, "-m", "omniseg.cli.main", "train", "--data", str(data), "--epochs", "8", "--seed", "0", "--no-progress",
                 "--model", "unet", "--batch-size", "8", "--img-size", "96", "--no-plan"]
        start = time.perf_counter()
        subprocess.run([*train, "--out", str(root / "whole")], check=True, capture_output=True)
        whole = time.perf_counter() - start
        start = time.perf_counter()
        process = subprocess.Popen([*train, "--out", str(root / "killed")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(whole * args.kill_at)
        process.kill()  # SIGKILL
        process.wait()
        killed = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run([*train, "--out", str(root / "killed"), "--resume"], check=True, capture_output=True)
        resumed = time.perf_counter() - start
        miou = {run: json.loads((root / run / "metrics.json").read_text())["miou"] for run in ("whole", "killed")}
    result = {"uninterrupted_s": whole, "killed_after_s": killed, "resume_s": resumed, "interrupted_total_s": killed + resumed,
              "miou_uninterrupted": miou["whole"], "miou_resumed": miou["killed"]}
    for key, value in result.items():
        print(f"{key:22} {value:.6g}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
