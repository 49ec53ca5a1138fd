"""Tracking a real video with a trained run: does ``omniseg track RUN VIDEO`` stream it?

In a fresh process, ``track_objects`` (what ``omniseg track RUN VIDEO`` calls) runs over ``--video`` (default
``../shared/data/video/coffee.mp4``, 287 frames) with ``--run`` (default ``runs/demo-video``, which ``omniseg demo --task
video`` writes) and records its peak RSS after ``--frames`` frames, after the last frame, and after the overlay MP4 and
the contact sheet are written, with the seconds a frame. Flat memory between the two frame counts means nothing grows
with the video's length (frames decoded when needed, each frame's files written as it is done).

    python benchmarks/video_tracking.py [--run runs/demo-video] [--video ../shared/data/video/coffee.mp4] [--frames 60]

Writes ``benchmarks/results/video_tracking.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(run: str, video: str, measured: int, queue) -> None:
    from omniseg.data.video import VideoFrames
    from omniseg.inference.prediction.predictor import Predictor
    from omniseg.inference.tracking.track_detections import track_objects

    predictor = Predictor(run)
    ready = peak_mb()
    marks: dict = {}

    def progress(done: int, total: int) -> None:
        if done == 1:
            marks["start"] = time.perf_counter()
        if done == measured:
            marks["measured"] = peak_mb()
            marks["measured_seconds"] = time.perf_counter() - marks["start"]
        if done == total:
            marks["frames"] = peak_mb()
            marks["total_seconds"] = time.perf_counter() - marks["start"]
            marks["total"] = total

    with tempfile.TemporaryDirectory() as out:
        summary = track_objects(predictor, video, out, progress=progress)
        with VideoFrames(video) as frames:
            size = [frames.height, frames.width]
    queue.put({"ready_mb": round(ready, 1), "peak_rss_mb_after_measured": round(marks["measured"], 1),
               "peak_rss_mb_after_all_frames": round(marks["frames"], 1), "peak_rss_mb_with_overlay": round(peak_mb(), 1),
               "frames": marks["total"], "size": size, "tracks": len(summary["objects"]),
               "seconds_per_frame": round(marks["total_seconds"] / max(marks["total"] - 1, 1), 4)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default=str(ROOT / "runs" / "demo-video"))
    parser.add_argument("--video", default=str(ROOT.parent / "shared" / "data" / "video" / "coffee.mp4"))
    parser.add_argument("--frames", type=int, default=60, help="the frame count of the first memory reading")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "video_tracking.json"))
    args = parser.parse_args()
    if not (Path(args.run) / "model.json").is_file():
        raise SystemExit(f"{args.run} is not a run: train one first (omniseg demo --task video)")
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=child, args=(args.run, args.video, args.frames, queue))
    process.start()
    result = queue.get()
    process.join()
    result |= {"run": args.run, "video": args.video, "measured_frames": args.frames,
               "growth_mb": round(result["peak_rss_mb_after_all_frames"] - result["peak_rss_mb_after_measured"], 1)}
    table = Table(title=f"omniseg track {Path(args.run).name} {Path(args.video).name} ({result['size'][1]}x{result['size'][0]})")
    for column in ("ready MB", f"peak after {args.frames} frames", f"after {result['frames']}", "with overlay", "growth MB",
                   "s / frame", "tracks"):
        table.add_column(column, justify="right")
    table.add_row(*(str(result[k]) for k in ("ready_mb", "peak_rss_mb_after_measured", "peak_rss_mb_after_all_frames",
                                             "peak_rss_mb_with_overlay", "growth_mb", "seconds_per_frame", "tracks")))
    Console().print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
