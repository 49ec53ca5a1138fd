"""Sliding-window inference on large inputs: omniseg against MONAI's ``sliding_window_inference``, same model and
weights, tile 512, overlap 0.5, Gaussian weighting, the same tiles a batch (``--batch``, default 1), in the same run.

For each size a synthetic image is written to disk as a tiled TIFF. Each method runs in its own process (so each
peak RSS, VmHWM, is its own): omniseg reads the TIFF band by band and writes the class PNG and the overlay row by
row (``predict_large_image``); MONAI reads the whole image and holds the whole probability map, as its API does.
omniseg's process also times its own tile forwards, so its wall time is compared with the sum of the work it
cannot avoid. MONAI gets the model as trained (``load_model``, eval mode), as its users pass it; omniseg's
Predictor folds BatchNorm into the convolutions and runs channels-last (same outputs), which is part of what is
measured. Each process also reports its resident memory once its libraries are imported and the model is loaded
(``ready``): peak minus ready is what the prediction itself holds, the part that could grow with the image; and
its peak private memory (anonymous pages, sampled), which leaves out the library files torch maps. A 3D row
runs a 3D U-Net over a NIfTI volume in 128^3 tiles (2 a batch): omniseg reads it slab by slab
(``predict_large_volume``), MONAI whole. Prints a table and saves JSON; nothing is asserted.

    python benchmarks/tiled_inference.py [--sizes 4096,8192] [--volume 256x512x512] [--out benchmarks/results/tiled_inference.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

TILE, OVERLAP = 512, 0.5
BATCH = int(os.environ.get("OMNISEG_BENCH_BATCH", "1"))  # tiles a forward, both methods (MONAI's default: 1)


def peak_rss_mb(field: str = "VmHWM") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def current_rss_mb() -> float:
    return peak_rss_mb("VmRSS")


class PrivateMemoryPeak:
    """The peak of the process's anonymous (private) resident memory, sampled every 5 ms by a thread: RSS less
    the pages of mapped library files (torch's CUDA build maps about 0.4 GB of them), which the kernel's own peak
    (VmHWM) counts too."""

    def __init__(self) -> None:
        self.peak, self._running = peak_rss_mb("RssAnon"), True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while self._running:
            self.peak = max(self.peak, peak_rss_mb("RssAnon"))
            time.sleep(0.005)

    def stop(self) -> float:
        self._running = False
        self._thread.join()
        return max(self.peak, peak_rss_mb("RssAnon"))


def write_inputs(root: Path, sizes: list[int], volume: tuple[int, int, int] | None) -> None:
    import tifffile
    import torch

    from omniseg.core.info import DatasetInfo
    from omniseg.models import ModelCard, create_model, save_model

    torch.manual_seed(0)
    kwargs = {"num_classes": 3, "encoder": "resnet18"}
    save_model(create_model("unet", **kwargs), root / "run2d", ModelCard("unet", kwargs, DatasetInfo(["background", "a", "b"], ignore_index=255),
                                                                       preprocessing={"mean": [0.5] * 3, "std": [0.25] * 3, "img_size": TILE}))
    rng = np.random.default_rng(0)
    for size in sizes:  # smooth blobs of colour, so the model's output is not uniform noise
        coarse = rng.integers(0, 255, (size // 256 + 1, size // 256 + 1, 3), dtype=np.uint8)
        image = np.repeat(np.repeat(coarse, 256, 0), 256, 1)[:size, :size]
        tifffile.imwrite(root / f"image_{size}.tif", image, photometric="rgb", tile=(256, 256), compression="zlib",
                         bigtiff=size * size * 3 > 2**31)
    if volume is not None:
        kwargs3d = {"num_classes": 2, "base_channels": 8}
        save_model(create_model("unet3d", **kwargs3d), root / "run3d",
                   ModelCard("unet3d", kwargs3d, DatasetInfo(["background", "organ"], ignore_index=255),
                             preprocessing={"normalise": "z-score per volume and channel", "patch_size": [128] * 3}))
        import nibabel

        nibabel.save(nibabel.Nifti1Image(rng.normal(size=volume[::-1]).astype(np.float32), np.eye(4)), root / "volume.nii")


def time_forwards(predictor) -> list[float]:
    """Make ``predictor`` add the seconds of its tile forwards up in the returned one-element list."""
    forward_seconds, real = [0.0], predictor.probabilities_of

    def timed(tiles):
        start = time.perf_counter()
        out = real(tiles)
        forward_seconds[0] += time.perf_counter() - start
        return out

    predictor.probabilities_of = timed
    return forward_seconds


def run_omniseg(root: Path, size: int) -> dict:
    import torch

    from omniseg.inference import Predictor
    from omniseg.inference.prediction.predict_files import predict_large_image

    predictor = Predictor(root / "run2d", device="cpu")
    forward_seconds = time_forwards(predictor)
    ready = current_rss_mb()
    out = root / f"omniseg_{size}"
    out.mkdir(exist_ok=True)
    start = time.perf_counter()
    predict_large_image(predictor, root / f"image_{size}.tif", out, tile=TILE, overlap=OVERLAP, batch_size=BATCH)
    wall = time.perf_counter() - start
    del torch
    return {"wall_s": wall, "forwards_s": forward_seconds[0], "peak_rss_mb": peak_rss_mb(), "ready_rss_mb": ready}


def run_monai(root: Path, size: int) -> dict:
    import tifffile
    import torch
    from monai.inferers import sliding_window_inference

    from omniseg.models import load_model

    model = load_model(root / "run2d")  # as trained, in eval mode
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in model.card.normalisation())
    ready = current_rss_mb()
    start = time.perf_counter()
    image = torch.from_numpy(tifffile.imread(root / f"image_{size}.tif")).permute(2, 0, 1)[None]
    with torch.inference_mode():
        x = (image.float() / 255 - mean) / std
        probabilities = sliding_window_inference(x, (TILE, TILE), BATCH, lambda t: model(t).softmax(1), overlap=OVERLAP,
                                                 mode="gaussian", sigma_scale=0.125)
        labels = probabilities.max(1).indices[0].to(torch.uint8).numpy()
    wall = time.perf_counter() - start
    return {"wall_s": wall, "peak_rss_mb": peak_rss_mb(), "ready_rss_mb": ready, "labels_sum": int(labels.sum())}


def run_volume(root: Path, method: str) -> dict:
    import torch

    from omniseg.data.formats.nifti import read_nifti
    from omniseg.data.transforms import VolumeTransform
    from omniseg.inference import Predictor
    from omniseg.inference.prediction.predict_files import predict_large_volume
    from omniseg.models import load_model

    if method == "omniseg":  # the NIfTI file read slab by slab, the labels written as NIfTI
        predictor = Predictor(root / "run3d", device="cpu")
        forward_seconds = time_forwards(predictor)
        ready = current_rss_mb()
        start = time.perf_counter()
        predict_large_volume(predictor, root / "volume.nii", root / "omniseg_volume", tile=128, overlap=OVERLAP)
        return {"wall_s": time.perf_counter() - start, "forwards_s": forward_seconds[0], "peak_rss_mb": peak_rss_mb(),
                "ready_rss_mb": ready}
    from monai.inferers import sliding_window_inference

    model = load_model(root / "run3d")
    ready = current_rss_mb()
    start = time.perf_counter()
    with torch.inference_mode():
        volume, _ = read_nifti(root / "volume.nii")
        x = VolumeTransform()({"image": torch.from_numpy(volume)})["image"][None]
        sliding_window_inference(x, (128, 128, 128), 2, lambda t: model(t).softmax(1), overlap=OVERLAP,
                                 mode="gaussian", sigma_scale=0.125).max(1).indices
    return {"wall_s": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb(), "ready_rss_mb": ready}


def worker(args) -> None:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    private = PrivateMemoryPeak()
    root = Path(args.root)
    if args.worker == "volume-omniseg":
        result = run_volume(root, "omniseg")
    elif args.worker == "volume-monai":
        result = run_volume(root, "monai")
    else:
        result = (run_omniseg if args.worker == "omniseg" else run_monai)(root, args.size)
    print(json.dumps(result | {"private_peak_mb": private.stop()}))


def in_process(root: Path, worker_name: str, size: int = 0) -> dict:
    done = subprocess.run([sys.executable, __file__, "--worker", worker_name, "--root", str(root), "--size", str(size)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def row(name: str, ours: dict, theirs: dict) -> dict:
    return {"input": name, "omniseg_s": ours["wall_s"], "omniseg_forwards_s": ours["forwards_s"],
            "omniseg_over_forwards": ours["wall_s"] / ours["forwards_s"], "monai_s": theirs["wall_s"],
            "speedup": theirs["wall_s"] / ours["wall_s"], "omniseg_rss_mb": ours["peak_rss_mb"],
            "omniseg_ready_rss_mb": ours["ready_rss_mb"], "omniseg_private_peak_mb": ours["private_peak_mb"],
            "monai_rss_mb": theirs["peak_rss_mb"], "monai_ready_rss_mb": theirs["ready_rss_mb"], "monai_private_peak_mb": theirs["private_peak_mb"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="4096,8192")
    parser.add_argument("--volume", default="256x512x512", help="D x H x W of the 3D row ('none': skip it)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "tiled_inference.json"))
    parser.add_argument("--batch", type=int, default=BATCH, help="tiles a forward pass, both methods (default 1, MONAI's default)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    os.environ["OMNISEG_BENCH_BATCH"] = str(args.batch)  # the workers read it
    sizes = [int(s) for s in args.sizes.split(",") if s]
    volume = None if args.volume == "none" else tuple(int(v) for v in args.volume.split("x"))
    console = Console(width=170)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_inputs(root, sizes, volume)
        for size in sizes:
            console.print(f"{size} x {size}: omniseg ...")
            ours = in_process(root, "omniseg", size)
            console.print(f"{size} x {size}: MONAI ...")
            rows.append(row(f"{size} x {size} RGB (TIFF)", ours, in_process(root, "monai", size)))
        if volume is not None:
            console.print(f"{'x'.join(map(str, volume))} volume ...")
            rows.append(row(f"{'x'.join(map(str, volume))} volume (NIfTI), 3D U-Net, 128^3 tiles", in_process(root, "volume-omniseg"),
                            in_process(root, "volume-monai")))
    table = Table("input", "omniseg s", "its forwards s", "omniseg / forwards", "MONAI s", "MONAI / omniseg",
                  "omniseg RSS MB peak (ready) private", "MONAI RSS MB peak (ready) private",
                  title=f"sliding windows: tile {TILE}, overlap {OVERLAP}, Gaussian, batch {args.batch}, {os.cpu_count()} CPUs")
    for r in rows:
        table.add_row(r["input"], f"{r['omniseg_s']:.1f}", f"{r['omniseg_forwards_s']:.1f}", f"{r['omniseg_over_forwards']:.3f}",
                      f"{r['monai_s']:.1f}", f"{r['speedup']:.2f}x", f"{r['omniseg_rss_mb']:.0f} ({r['omniseg_ready_rss_mb']:.0f}) {r['omniseg_private_peak_mb']:.0f}",
                      f"{r['monai_rss_mb']:.0f} ({r['monai_ready_rss_mb']:.0f}) {r['monai_private_peak_mb']:.0f}")
    console.print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"tile": TILE, "overlap": OVERLAP, "batch": args.batch, "cpus": os.cpu_count(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
