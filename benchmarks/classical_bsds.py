"""Every classical method of ``omniseg.classical`` over a BSDS-format folder: the benchmark's four measures
(probabilistic Rand index, variation of information, segmentation covering, boundary F) and seconds per image.

Each method runs once at its default setting (the table's main columns; boundary F from the counts summed
over images), then over a sweep of its main parameter for ODS / OIS (the best setting for the whole folder,
and each image's best setting) of boundary F, PRI, covering and VoI. The interactive methods are given
marks taken from the first annotator: the random walker one seed at the most interior pixel of each of its
regions, GrabCut the bounding box of its largest region that does not touch the image border (the central
half of the image where every region does). Seconds are the method's own time on this machine (reading and scoring excluded).
Prints a table and saves JSON; nothing is asserted.

    python benchmarks/classical_bsds.py [--data ../shared/data/bsds500] [--methods felzenszwalb slic ...]
                                        [--no-sweep] [--out benchmarks/results/classical_bsds.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from scipy import ndimage

from omniseg.classical.methods import METHODS, resolve_parameters, segment
from omniseg.data.formats.bsds import read_bsds_truth
from omniseg.data.imageio import read_image
from omniseg.metrics import BoundaryCounts, optimal_boundary_scores, optimal_region_scores
from omniseg.metrics.unsupervised import unsupervised_scores

# settings for natural 481x321 photographs (the defaults of a few methods suit small arrays) and each sweep
SETTINGS = {
    "otsu": ({}, None), "multi-otsu": ({"classes": 3}, ("classes", [2, 3, 4, 5])),
    "kmeans": ({"k": 4, "connect": True}, ("k", [2, 3, 4, 6, 8])),
    "mean-shift": ({"bandwidth": 0.1, "connect": True}, ("bandwidth", [0.06, 0.1, 0.15, 0.2])),
    "gmm": ({"k": 4, "connect": True}, ("k", [2, 3, 4, 6])),
    "watershed": ({"h": 0.1, "smoothing": 2.0}, ("h", [0.05, 0.1, 0.2, 0.3])),
    "split-merge": ({"threshold": 40.0, "min_size": 4}, ("threshold", [30.0, 40.0, 60.0, 80.0])),
    "mrf-icm": ({"k": 4}, ("beta", [0.5, 1.0, 2.0, 4.0])),
    "mrf-gibbs": ({"k": 4}, ("beta", [0.5, 1.0, 2.0, 4.0])),
    "slic": ({"segments": 200}, ("segments", [25, 50, 100, 200, 400])),
    "slic0": ({"segments": 200}, ("segments", [25, 50, 100, 200, 400])),
    "felzenszwalb": ({"scale": 300.0}, ("scale", [100.0, 200.0, 300.0, 500.0, 800.0, 1200.0, 2000.0])),
    "rag-merge": ({"threshold": 0.08}, ("threshold", [0.04, 0.06, 0.08, 0.12, 0.16])),
    "ncut": ({}, ("threshold", [0.0005, 0.001, 0.002, 0.005])),
    "grabcut": ({}, None), "random-walker": ({}, ("beta", [30.0, 130.0, 500.0])),
}


def oracle_marks(name: str, segmentation: np.ndarray) -> tuple[np.ndarray | None, tuple[int, int, int, int] | None]:
    """``(seeds, box)`` from one human segmentation (see the module docstring); None for what a method takes not."""
    if name == "random-walker":
        seeds = np.zeros(segmentation.shape, np.int64)
        for number, region in enumerate(np.unique(segmentation)):
            inside = ndimage.distance_transform_edt(np.pad(segmentation == region, 1))[1:-1, 1:-1]
            seeds[np.unravel_index(int(np.argmax(inside)), inside.shape)] = number + 1
        return seeds, None
    if name == "grabcut":
        border = np.unique(np.concatenate([segmentation[0], segmentation[-1], segmentation[:, 0], segmentation[:, -1]]))
        inner = [(int((segmentation == region).sum()), region) for region in np.unique(segmentation) if region not in border]
        height, width = segmentation.shape
        if not inner:  # every region touches the border: the central half of the image
            return None, (width // 4, height // 4, width - width // 4, height - height // 4)
        rows, columns = np.nonzero(segmentation == max(inner)[1])
        return None, (int(columns.min()), int(rows.min()), int(columns.max()) + 1, int(rows.max()) + 1)
    return None, None


def images_of(root: Path) -> list[tuple[Path, Path]]:
    pairs = []
    for truth in sorted((root / "groundTruth").rglob("*.mat")):
        image = root / "images" / truth.parent.name / f"{truth.stem}.jpg"
        if image.is_file():
            pairs.append((image, truth))
    if not pairs:
        raise SystemExit(f"{root} has no BSDS images with ground truth (images/<split>/*.jpg + groundTruth/<split>/*.mat)")
    return pairs


def run_setting(name: str, parameters: dict, data: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> list[dict]:
    """Per-image scores and seconds of one method at one setting."""
    rows = []
    for image, segmentations, boundaries in data:
        seeds, box = oracle_marks(name, segmentations[0])
        start = time.perf_counter()
        labels = segment(image, name, parameters, seeds=seeds, box=box)
        seconds = time.perf_counter() - start
        rows.append({**unsupervised_scores(labels, segmentations, boundaries), "seconds": seconds, "regions": int(labels.max()) + 1})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "bsds500"))
    parser.add_argument("--methods", nargs="+", default=list(SETTINGS), choices=list(METHODS))
    parser.add_argument("--no-sweep", action="store_true", help="default settings only (no ODS / OIS)")
    parser.add_argument("--out", default="benchmarks/results/classical_bsds.json")
    args = parser.parse_args()
    console = Console() if sys.stdout.isatty() else Console(width=150)  # the table's ten columns, unwrapped in logs
    pairs = images_of(Path(args.data))
    data = [(read_image(image).permute(1, 2, 0).numpy(), *read_bsds_truth(truth)) for image, truth in pairs]
    results = {}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("methods", total=len(args.methods))
        for name in args.methods:
            defaults, sweep = SETTINGS[name]
            progress.update(task, description=name)
            main_run = run_setting(name, defaults, data)
            total = BoundaryCounts(*np.sum([row["boundary"] for row in main_run], 0).tolist())
            entry = {"parameters": resolve_parameters(name, defaults),
                     "seconds_per_image": float(np.mean([row["seconds"] for row in main_run])),
                     "seconds": [round(row["seconds"], 4) for row in main_run],
                     "regions_per_image": float(np.mean([row["regions"] for row in main_run])),
                     "pri": float(np.mean([row["pri"] for row in main_run])), "voi": float(np.mean([row["voi"] for row in main_run])),
                     "covering": float(np.mean([row["covering"] for row in main_run])), "boundary": total.scores()}
            if sweep and not args.no_sweep:
                key, values = sweep
                runs = [main_run if {**defaults, key: value} == defaults else run_setting(name, {**defaults, key: value}, data)
                        for value in values]
                counts = np.array([[row["boundary"] for row in rows] for rows in runs])
                boundary = optimal_boundary_scores(counts)
                boundary["ods"]["setting"] = values[boundary["ods"]["setting"]]
                region = {measure: optimal_region_scores(np.array([[row[measure] for row in rows] for rows in runs]),
                                                         higher_is_better=measure != "voi") for measure in ("pri", "covering", "voi")}
                for scores in region.values():
                    scores["ods_setting"] = values[scores["ods_setting"]]
                entry["sweep"] = {"parameter": key, "values": values, "boundary": boundary, **region}
            results[name] = entry
            progress.advance(task)
    table = Table(title=f"Classical methods on {args.data} ({len(pairs)} images; boundary tolerance 0.0075 of the diagonal)")
    for column in ("method", "s / image", "regions", "PRI", "VoI", "covering", "boundary F", "ODS F", "OIS F", "swept"):
        table.add_column(column, justify="left" if column in ("method", "swept") else "right")
    for name, entry in results.items():
        sweep = entry.get("sweep")
        table.add_row(name, f"{entry['seconds_per_image']:.3f}", f"{entry['regions_per_image']:.0f}", f"{entry['pri']:.3f}",
                      f"{entry['voi']:.3f}", f"{entry['covering']:.3f}", f"{entry['boundary']['f']:.3f}",
                      f"{sweep['boundary']['ods']['f']:.3f}" if sweep else "-", f"{sweep['boundary']['ois']['f']:.3f}" if sweep else "-",
                      f"{sweep['parameter']} (ODS at {sweep['boundary']['ods']['setting']})" if sweep else "-")
    console.print(table)
    output = {"machine": platform.processor() or platform.machine(), "data": args.data, "images": [str(p[0].name) for p in pairs],
              "voi_unit": "nats", "methods": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(output, indent=2))
    console.print(f"saved {args.out}")


if __name__ == "__main__":
    main()
