"""SAM 2 on a CPU against the official package: the same random Hiera weights on both sides (SAM 2.1 Hiera-T,
``torch.manual_seed(0)``), two objects clicked on the first frame of ``coffee.mp4`` and followed through it.

- omniseg (the precision ``auto`` picks on this processor) follows them through the first ``--rss-frames`` frames (all
  287 by default): its per-frame latency over the first ``--frames`` frames, and its peak RSS after ``--frames`` and
  after ``--rss-frames`` frames (it streams the video: a frame is decoded when it is needed).
- The official predictor loads the ``--rss-frames`` frames (as 1024x1024 float tensors, from a folder of JPEGs, as it
  reads videos without decord) and follows the objects through all of them: its per-frame latency over the first
  ``--frames``, its peak RSS after ``--frames`` and at the end. Its memory attention is patched to read its bfloat16
  memories in float32 (it fails on a CPU otherwise); holes are left unfilled on both sides (its hole filling needs its
  CUDA extension).
- omniseg in float32 over the first ``--agreement-frames``: how many mask pixels the chosen precision changes.
- Image-encoder latency at 1024 px for each size, in float32 and in the precision ``auto`` picks.

Each measurement runs in its own process; prints a table and saves JSON; nothing is asserted.

    python benchmarks/sam2.py [--frames 60] [--rss-frames 287] [--agreement-frames 12] [--sizes tiny,small,base_plus,large]
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
from collections.abc import Sequence
from pathlib import Path

# this file is named like the official package it measures against: keep its folder off the import path
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

COFFEE = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "coffee.mp4"
CLICKS = {1: (640, 360), 2: (300, 500)}
AGREEMENT_FRAMES_KEPT = 64  # omniseg's first masks kept for the agreement with float32  # two objects of the first frame (pixels of the 1280x720 frame)


def child(kind: str, frames: int, size: str, folder: str, measured: int) -> dict:
    """Runs in its own process: one predictor over ``frames`` frames; returns the seconds per frame and the peak RSS
    (MB) over the first ``measured`` frames, and the peak RSS at the end.
    omniseg's predictors save their first masks (bit-packed) in ``folder`` for the agreement."""
    import resource

    import torch

    def peak_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    torch.manual_seed(0)
    from omniseg.models import create_model

    ours = create_model(f"sam2.1_hiera_{size}")
    start, times, precision, peak_measured = time.perf_counter(), [], "32", None
    if kind.startswith("encoder"):
        from omniseg.core.precision import autocast, resolve_precision

        x, precision = torch.randn(1, 3, 1024, 1024), resolve_precision(kind.split("-")[1], torch.device("cpu"))
        with torch.inference_mode(), autocast(precision, torch.device("cpu")):
            ours.image_encoder(x)
            start = time.perf_counter()
            ours.image_encoder(x)
        return {"seconds": time.perf_counter() - start, "precision": precision}
    if kind.startswith("omniseg"):
        from omniseg.data.video import VideoFrames
        from omniseg.inference.promptable.video_predictor import VideoPredictor

        masks = []
        with VideoFrames(COFFEE) as video:
            predictor = VideoPredictor(ours, device="cpu", fill_hole_area=0, precision=kind.split("-")[1]).start(_Clip(video, frames))
            for obj_id, (x, y) in CLICKS.items():
                predictor.add_prompt(0, obj_id, points=[[x, y]], labels=[1])
            last = time.perf_counter()
            for index, _, frame_masks in predictor.propagate():
                now = time.perf_counter()
                times.append(now - last)
                if index < AGREEMENT_FRAMES_KEPT:
                    masks.append(np.packbits(frame_masks))
                if len(times) == measured:
                    peak_measured = peak_mb()
                last = time.perf_counter()
        precision = predictor.precision
        np.save(Path(folder) / f"{kind}_masks.npy", np.stack(masks))
    else:
        from sam2.modeling.memory_attention import MemoryAttention

        forward = MemoryAttention.forward
        MemoryAttention.forward = lambda self, curr, memory, curr_pos=None, memory_pos=None, num_obj_ptr_tokens=0: forward(
            self, curr, memory.float(), curr_pos, memory_pos, num_obj_ptr_tokens)
        official = _official(size)
        official.load_state_dict(ours.state_dict(), strict=True)
        with torch.inference_mode():
            state = official.init_state(folder)
            for obj_id, (x, y) in CLICKS.items():
                official.add_new_points_or_box(state, 0, obj_id, points=[[x, y]], labels=[1])
            last = time.perf_counter()
            for _ in official.propagate_in_video(state):
                now = time.perf_counter()
                times.append(now - last)
                if len(times) == measured:
                    peak_measured = peak_mb()
                last = time.perf_counter()
    latency = times[:measured]
    return {"seconds_per_frame": sum(latency) / len(latency), "first_seconds": latency[0], "last_seconds": latency[-1],
            "frames": len(times), "measured_frames": len(latency), "wall": time.perf_counter() - start, "precision": precision,
            "peak_rss_mb_measured": peak_measured or peak_mb(), "peak_rss_mb": peak_mb()}


class _Clip(Sequence):
    """The first ``count`` frames of an open video, read on demand."""

    def __init__(self, video, count: int) -> None:
        self.video, self.count = video, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int):
        if not 0 <= index < self.count:
            raise IndexError(index)
        return self.video[index]


def _official(size: str):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    import sam2

    short = {"tiny": "t", "small": "s", "base_plus": "b+", "large": "l"}[size]
    config = OmegaConf.load(f"{sam2.__path__[0]}/configs/sam2.1/sam2.1_hiera_{short}.yaml")
    config.model._target_ = "sam2.sam2_video_predictor.SAM2VideoPredictor"
    config.model.binarize_mask_from_pts_for_mem_enc = True
    config.model.sam_mask_decoder_extra_args = {"dynamic_multimask_via_stability": True, "dynamic_multimask_stability_delta": 0.05,
                                                "dynamic_multimask_stability_thresh": 0.98}
    return instantiate(config.model, _recursive_=True).eval()


def agreement(masks: np.ndarray, reference: np.ndarray) -> dict:
    """Bit-packed masks ``[frames, bytes]`` against the reference's: the share of equal pixels and the mean IoU of an
    object on a frame."""
    equal = 1.0 - np.unpackbits(masks ^ reference).mean()
    found, truth = (np.unpackbits(m, axis=1).reshape(len(m), len(CLICKS), -1).astype(bool) for m in (masks, reference))
    union = (found | truth).sum(axis=2)
    ious = np.where(union > 0, (found & truth).sum(axis=2) / np.maximum(union, 1), 1.0)
    return {"pixel_agreement": float(equal), "mean_iou": float(ious.mean())}


def run(kind: str, frames: int, size: str, folder: str, measured: int = 0) -> dict:
    """``child(...)`` in a fresh process (its own peak RSS)."""
    result = subprocess.run([sys.executable, __file__, "--child", kind, str(frames), size, folder, str(measured)], capture_output=True,
                            text=True)
    if result.returncode:
        raise RuntimeError(result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, frames, size, folder, measured = sys.argv[2:7]
        print(json.dumps(child(kind, int(frames), size, folder, int(measured))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--rss-frames", type=int, default=287)
    parser.add_argument("--agreement-frames", type=int, default=12)
    parser.add_argument("--sizes", default="tiny,small,base_plus,large", help="image encoders to time")
    parser.add_argument("--out", default="benchmarks/results/sam2.json")
    parser.add_argument("--only", help="measure only these, comma-separated (encoders, omniseg, omniseg-32, official), keeping "
                                       "the other measurements of --out (same options)")
    args = parser.parse_args()
    parts = set((args.only or "encoders,omniseg,omniseg-32,official").split(","))
    if not 1 <= args.agreement_frames <= min(args.frames, AGREEMENT_FRAMES_KEPT) or args.rss_frames < args.frames:
        parser.error(f"--agreement-frames is 1..min(--frames, {AGREEMENT_FRAMES_KEPT}) and --rss-frames at least --frames")
    console = Console()
    from omniseg.data.video import VideoFrames

    results: dict = {"frames": args.frames, "rss_frames": args.rss_frames, "agreement_frames": args.agreement_frames, "video": {},
                     "encoder_seconds": {}}
    if args.only:
        kept = json.loads(Path(args.out).read_text())
        if [kept[k] for k in ("frames", "rss_frames", "agreement_frames")] != [args.frames, args.rss_frames, args.agreement_frames]:
            parser.error(f"{args.out} was measured with other --frames, --rss-frames or --agreement-frames")
        results.update(video=kept["video"], encoder_seconds=kept["encoder_seconds"], agreement=kept.get("agreement"))
    for size in args.sizes.split(",") if "encoders" in parts else []:
        results["encoder_seconds"][size] = {p: run(f"encoder-{p}", 0, size, "") for p in ("32", "auto")}
        console.print(f"encoder {size}: {results['encoder_seconds'][size]}")
    with tempfile.TemporaryDirectory() as folder:
        from PIL import Image

        with VideoFrames(COFFEE) as video:
            for k in range(args.rss_frames):
                Image.fromarray(video[k]).save(Path(folder) / f"{k}.jpg", quality=95)
        video = results["video"]
        if "omniseg" in parts:
            video["omniseg"] = run("omniseg-auto", args.rss_frames, "tiny", folder, args.frames)
            console.print(f"omniseg: {video['omniseg']}")
        if "omniseg-32" in parts:
            video["omniseg-32"] = run("omniseg-32", args.agreement_frames, "tiny", folder, args.agreement_frames)
            console.print(f"omniseg float32: {video['omniseg-32']}")
        if "omniseg" in parts or "omniseg-32" in parts:
            if not {"omniseg", "omniseg-32"} <= parts:
                parser.error("the agreement compares omniseg's masks with float32 ones: measure omniseg and omniseg-32 together")
            ours = np.load(Path(folder) / "omniseg-auto_masks.npy")[: args.agreement_frames]
            results["agreement"] = agreement(ours, np.load(Path(folder) / "omniseg-32_masks.npy"))
        if "official" in parts:
            video["official"] = run("official", args.rss_frames, "tiny", folder, args.frames)
            console.print(f"official: {video['official']}")
    if not {"omniseg", "official"} <= set(video):
        Path(args.out).write_text(json.dumps(results, indent=2))
        console.print(f"wrote {args.out} (measure the other predictors with --only to compare)")
        return
    results["speedup"] = video["official"]["seconds_per_frame"] / video["omniseg"]["seconds_per_frame"]
    results["rss_growth_mb"] = video["omniseg"]["peak_rss_mb"] - video["omniseg"]["peak_rss_mb_measured"]
    results["rss_share_of_official"] = video["omniseg"]["peak_rss_mb"] / video["official"]["peak_rss_mb"]
    table = Table(title=f"SAM 2.1 Hiera-T video predictors on a CPU ({os.cpu_count()} cores), 2 objects, coffee.mp4")
    for column in ("predictor", "precision", "frames followed", "s / frame", "first / last frame (s)",
                   f"peak RSS after {args.frames} (MB)", "peak RSS at the end (MB)"):
        table.add_column(column, justify="left" if column == "predictor" else "right")
    for key, row in video.items():
        table.add_row(key.split("-")[0], row["precision"], str(row["frames"]), f"{row['seconds_per_frame']:.2f}",
                      f"{row['first_seconds']:.2f} / {row['last_seconds']:.2f}", f"{row['peak_rss_mb_measured']:.0f}",
                      f"{row['peak_rss_mb']:.0f}")
    console.print(table)
    console.print(f"omniseg {results['speedup']:.2f}x faster than the official predictor over {args.frames} frames; masks against "
                  f"float32 over {args.agreement_frames} frames: pixel agreement {results['agreement']['pixel_agreement']:.4f}, "
                  f"mean IoU {results['agreement']['mean_iou']:.4f}; omniseg's peak RSS {results['rss_growth_mb']:+.0f} MB from "
                  f"{args.frames} to {args.rss_frames} frames, {results['rss_share_of_official']:.2f} of the official's over "
                  f"{args.rss_frames} frames")
    for size, row in results["encoder_seconds"].items():
        console.print(f"image encoder Hiera-{size}, 1024 px: {row['32']['seconds']:.2f} s float32, "
                      f"{row['auto']['seconds']:.2f} s {row['auto']['precision']}")
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    Path(args.out).write_text(json.dumps(results, indent=2))
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
