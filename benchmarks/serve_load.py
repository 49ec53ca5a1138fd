"""A burst against ``omniseg serve``: 200 concurrent requests (half semantic predictions, half prompts on one
cached embedding) to a server started on 127.0.0.1 in its own process, while a monitor polls the health check on
its own connection; then an oversized and a broken upload, and one more request; then SIGTERM while four
predictions are in flight (a graceful shutdown answers them). Prints latency percentiles, failures and the
server's peak memory (VmHWM) and saves JSON. Nothing is asserted.

    python benchmarks/serve_load.py [--requests 200] [--out benchmarks/results/serve_load.json]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table


def write_runs(root: Path) -> list[Path]:
    """A small semantic U-Net and a small Segment Anything, saved as runs (random weights: load, not quality)."""
    import torch

    from omniseg.core.info import DatasetInfo
    from omniseg.models import ModelCard, create_model, save_model

    torch.manual_seed(0)
    kwargs = {"num_classes": 3, "depth": 3, "base_channels": 16}
    save_model(create_model("unet", **kwargs), root / "scenes", ModelCard("unet", kwargs, DatasetInfo(["background", "a", "b"], ignore_index=255),
                                                                        preprocessing={"mean": [0.5] * 3, "std": [0.25] * 3}))
    sam = dict(img_size=256, embed_dim=64, depth=2, num_heads=4, global_attn_indexes=(1,), window_size=7, prompt_embed_dim=64,
               decoder_mlp_dim=256, decoder_num_heads=4, iou_head_hidden_dim=64)
    save_model(create_model("sam", **sam), root / "sam", ModelCard("sam", sam, DatasetInfo(["background", "object"], ignore_index=255),
                                                                task="promptable"))
    return [root / "scenes", root / "sam"]


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def burst(url: str, requests: int, image: bytes) -> dict:
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=300) as client, httpx.AsyncClient(base_url=url, timeout=300) as monitor:
        embedded = (await client.post("/api/embed", files={"file": ("a.png", image)})).json()["embedding_id"]
        health: list[tuple[float, int]] = []
        done = asyncio.Event()

        async def poll() -> None:
            while not done.is_set():
                start = time.perf_counter()
                status = (await monitor.get("/api/health")).status_code
                health.append((time.perf_counter() - start, status))
                await asyncio.sleep(0.2)

        async def one(k: int) -> tuple[str, float, int]:
            start = time.perf_counter()
            if k % 2:
                rng = np.random.default_rng(k)
                response = await client.post("/api/prompt", json={"embedding_id": embedded, "points": [[float(rng.integers(0, 320)), float(rng.integers(0, 240))]]})
                kind = "prompt"
            else:
                response = await client.post("/api/predict", files={"file": ("a.png", image)}, data={"model": "scenes"})
                kind = "predict"
            return kind, time.perf_counter() - start, response.status_code

        poller = asyncio.create_task(poll())
        start = time.perf_counter()
        results = await asyncio.gather(*(one(k) for k in range(requests)))
        wall = time.perf_counter() - start
        done.set()
        await poller
        oversized = (await client.post("/api/predict", files={"file": ("big.png", b"\0" * (30 * 1024 * 1024))}, data={"model": "scenes"})).status_code
        broken = (await client.post("/api/predict", files={"file": ("cut.png", image[:200])}, data={"model": "scenes"})).status_code
        after = (await client.post("/api/predict", files={"file": ("a.png", image)}, data={"model": "scenes"})).status_code
    return {"results": results, "wall": wall, "health": health, "oversized": oversized, "broken": broken, "after": after}


async def stop_during_requests(url: str, server: subprocess.Popen, image: bytes) -> list[int]:
    """The statuses of four predictions in flight when the server is sent SIGTERM."""
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        async def one() -> int:
            try:
                return (await client.post("/api/predict", files={"file": ("a.png", image)}, data={"model": "scenes"})).status_code
            except httpx.HTTPError:
                return 0

        pending = [asyncio.create_task(one()) for _ in range(4)]
        await asyncio.sleep(0.3)
        server.send_signal(signal.SIGTERM)
        return list(await asyncio.gather(*pending))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "serve_load.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = write_runs(Path(tmp))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-m", "omniseg.cli.main", "serve", *map(str, runs), "--port", str(port), "--workers", "2"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        url = f"http://127.0.0.1:{port}"
        import httpx

        for _ in range(600):
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        image = png(np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8))
        report = asyncio.run(burst(url, args.requests, image))
        rss = peak_rss_mb(server.pid)
        in_flight = asyncio.run(stop_during_requests(url, server, image))
        exit_code = server.wait(30)
    rows = []
    for kind in ("predict", "prompt"):
        times = sorted(t for k, t, s in report["results"] if k == kind)
        failed = sum(1 for k, t, s in report["results"] if k == kind and s != 200)
        rows.append({"kind": kind, "requests": len(times), "failed": failed, "p50_s": statistics.median(times),
                     "p95_s": times[int(0.95 * (len(times) - 1))], "max_s": times[-1]})
    health = report["health"]
    summary = {"requests": args.requests, "wall_s": report["wall"], "rows": rows, "health_checks": len(health),
               "health_failed": sum(1 for _, s in health if s != 200), "health_max_s": max(t for t, _ in health),
               "oversized_status": report["oversized"], "broken_status": report["broken"], "after_status": report["after"],
               "server_peak_rss_mb": rss, "in_flight_at_sigterm": in_flight, "server_exit_code": exit_code,
               "cpus": os.cpu_count()}
    table = Table("requests", "n", "failed", "p50 s", "p95 s", "max s", title=f"{args.requests} concurrent requests in {report['wall']:.1f} s")
    for row in rows:
        table.add_row(row["kind"], str(row["requests"]), str(row["failed"]), f"{row['p50_s']:.2f}", f"{row['p95_s']:.2f}", f"{row['max_s']:.2f}")
    console = Console()
    console.print(table)
    console.print(f"health checks during the burst: {summary['health_checks']} ({summary['health_failed']} failed, slowest "
                  f"{summary['health_max_s']:.3f} s); oversized upload -> {summary['oversized_status']}, broken upload -> "
                  f"{summary['broken_status']}, then a prediction -> {summary['after_status']}; server peak RSS "
                  f"{rss:.0f} MB; SIGTERM with 4 predictions in flight: answered {in_flight}, then the server exited "
                  f"({exit_code}: uvicorn re-raises the signal after its graceful shutdown)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
