"""RoIAlign: omniseg's matrix-product form against torchvision's operator, forward + backward, same run.

Shapes: the demo detector's box and mask pools (batch 8 of 64x64 scenes, 64 channels, stride 4), and pools
of paper-width detectors on 128-512 px images (256 channels, 512 RoIs, 2 images). Each row is timed on the
same inputs for both, and the largest difference of values and gradients is printed beside the ratio.
Nothing is asserted.

    python benchmarks/roi_align.py [--repeats 10] [--out benchmarks/results/roi_align.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from torchvision.ops import roi_align as torchvision_roi_align

from omniseg.models.instance.roi_align import roi_align

# (images, channels, map side, RoIs, output side, sampling ratio)
SHAPES = [
    (8, 64, 16, 256, 7, 0),  # the demo's box pool
    (8, 64, 16, 64, 14, 0),  # the demo's mask pool (positive RoIs)
    (2, 256, 32, 512, 7, 2),  # a paper-width box pool on 128 px images
    (2, 256, 64, 512, 7, 2),  # ... 256 px
    (2, 256, 128, 512, 7, 2),  # ... 512 px
]


def seconds(function, features: torch.Tensor, rois: torch.Tensor, size: int, ratio: int, repeats: int) -> float:
    """Median seconds of a forward and a backward."""
    times = []
    for index in range(repeats + 2):
        start = time.perf_counter()
        out = function(features, rois, (size, size), 0.25, ratio)
        out.square().sum().backward()
        if index >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "roi_align.json"))
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    table = Table("images", "channels", "map", "RoIs", "output", "torchvision ms", "omniseg ms", "speed-up", "max |diff|")
    rows = []
    for images, channels, side, count, size, ratio in SHAPES:
        features = torch.randn(images, channels, side, side, generator=generator, requires_grad=True)
        corner = torch.rand(count, 2, generator=generator) * side * 4 * 0.8
        extent = torch.rand(count, 2, generator=generator) * side * 4 * 0.4 + 1
        rois = torch.cat([torch.randint(0, images, (count, 1), generator=generator).float(), corner, corner + extent], 1)
        reference = torchvision_roi_align(features, rois, (size, size), 0.25, ratio)
        (reference_grad,) = torch.autograd.grad(reference.square().sum(), features)
        ours = roi_align(features, rois, (size, size), 0.25, ratio)
        (ours_grad,) = torch.autograd.grad(ours.square().sum(), features)
        difference = max((ours - reference).abs().max().item(), (ours_grad - reference_grad).abs().max().item())
        theirs_s = seconds(torchvision_roi_align, features, rois, size, ratio, args.repeats)
        ours_s = seconds(roi_align, features, rois, size, ratio, args.repeats)
        rows.append({"images": images, "channels": channels, "map": side, "rois": count, "output": size, "sampling_ratio": ratio,
                     "torchvision_ms": round(theirs_s * 1000, 2), "omniseg_ms": round(ours_s * 1000, 2),
                     "speedup": round(theirs_s / ours_s, 2), "max_difference": difference})
        table.add_row(str(images), str(channels), f"{side}x{side}", str(count), f"{size}x{size}", f"{theirs_s * 1000:.1f}",
                      f"{ours_s * 1000:.1f}", f"{theirs_s / ours_s:.2f}x", f"{difference:.1e}")
    Console().print(table)
    result = {"rows": rows, "machine": {"torch": torch.__version__, "threads": torch.get_num_threads(), "platform": platform.platform()}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
