"""Throughput of omniseg's U-Net-resnet34 against segmentation_models_pytorch's Unet("resnet34").

Measured in one run on the same machine, same inputs, random weights (no downloads):
  * inference: images/s at batch 1, 512x512, as each library's users run it (omniseg: Predictor;
    SMP: model.eval() under torch.inference_mode());
  * training: images/s at batch 4, 512x512, forward + backward + AdamW step (omniseg: channels-last and
    the fused AdamW kernel, as `omniseg train` does by default; SMP: its default layout and PyTorch's
    default AdamW, as its examples train). The plain row uses the same layout and optimizer for both.

Prints a table with the ratios and saves JSON. Timings are medians over repeats; nothing is asserted.

    python benchmarks/semantic_throughput.py [--size 512] [--repeats 10] [--out benchmarks/results/semantic_throughput.json]
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

from omniseg import DatasetInfo, Predictor, create_model
from omniseg.core import IMAGENET_MEAN, IMAGENET_STD
from omniseg.models.hub import ModelCard


def _median_seconds(step, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _inference_step(model, x, preprocess=None):
    def step():
        with torch.inference_mode():
            y = model(preprocess(x) if preprocess else x)
            y.argmax(1)

    return step


def _training_step(model, x, target, memory_format=torch.contiguous_format, fused=None):
    model = model.to(memory_format=memory_format).train()
    x = x.contiguous(memory_format=memory_format)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=fused)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), target)
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", default="benchmarks/results/semantic_throughput.json")
    args = parser.parse_args()
    import segmentation_models_pytorch as smp

    torch.manual_seed(0)
    size, k = args.size, args.classes
    console = Console()
    image = torch.randint(0, 256, (1, 3, size, size), dtype=torch.uint8)
    batch = torch.randn(4, 3, size, size)
    target = torch.randint(0, k, (4, size, size))

    ours = create_model("unet", encoder="resnet34", num_classes=k)
    ours.card = ModelCard("unet", {"encoder": "resnet34", "num_classes": k}, DatasetInfo([str(i) for i in range(k)], ignore_index=255),
                          preprocessing={"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)})
    theirs = smp.Unet("resnet34", encoder_weights=None, classes=k)
    params = {"omniseg": sum(p.numel() for p in ours.parameters()), "smp": sum(p.numel() for p in theirs.parameters())}

    predictor = Predictor(ours, device="cpu")
    x_float = image.float() / 255
    results = {}
    console.print("timing inference (batch 1) ...")
    results["inference_omniseg"] = 1 / _median_seconds(_inference_step(predictor.model, image, predictor.preprocess), args.repeats)
    results["inference_omniseg_plain"] = 1 / _median_seconds(_inference_step(ours.eval(), x_float), args.repeats)
    results["inference_smp"] = 1 / _median_seconds(_inference_step(theirs.eval(), x_float), args.repeats)
    console.print("timing training (batch 4) ...")
    train_repeats = max(args.repeats // 2, 3)
    results["training_omniseg_plain"] = 4 / _median_seconds(_training_step(ours, batch, target), train_repeats)
    results["training_smp"] = 4 / _median_seconds(_training_step(theirs, batch, target), train_repeats)
    # as `omniseg train` runs it (train.channels_last, the default, and the fused AdamW kernel)
    results["training_omniseg"] = 4 / _median_seconds(
        _training_step(ours, batch, target, torch.channels_last, fused=True), train_repeats
    )

    rows = [
        ("inference, batch 1 (Predictor: folded BN, channels-last)", results["inference_omniseg"], results["inference_smp"], 1.1),
        ("inference, batch 1 (plain eval model)", results["inference_omniseg_plain"], results["inference_smp"], None),
        ("training, batch 4 (channels-last, fused AdamW, as `omniseg train`)", results["training_omniseg"], results["training_smp"], 1.0),
        ("training, batch 4 (plain contiguous model)", results["training_omniseg_plain"], results["training_smp"], None),
    ]
    table = Table(title=f"U-Net resnet34, {size}x{size}, {k} classes, CPU threads={torch.get_num_threads()}")
    for col in ("measure", "omniseg img/s", "SMP img/s", "ratio", "target"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    for name, ours_rate, smp_rate, goal in rows:
        table.add_row(name, f"{ours_rate:.2f}", f"{smp_rate:.2f}", f"{ours_rate / smp_rate:.2f}x",
                      f">= {goal:.1f}x" if goal else "-")
    console.print(table)
    console.print(f"parameters: omniseg {params['omniseg']:,}  SMP {params['smp']:,}")
    record = {
        "benchmark": "semantic_throughput",
        "size": size,
        "classes": k,
        "torch": torch.__version__,
        "smp": smp.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "images_per_second": results,
        "ratios": {
            "inference": results["inference_omniseg"] / results["inference_smp"],
            "inference_plain": results["inference_omniseg_plain"] / results["inference_smp"],
            "training": results["training_omniseg"] / results["training_smp"],
            "training_plain": results["training_omniseg_plain"] / results["training_smp"],
        },
        "parameters": params,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    console.print(f"saved {out}")


if __name__ == "__main__":
    main()
