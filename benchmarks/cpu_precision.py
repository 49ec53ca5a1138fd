"""Every CPU cycle: each model's latency in torch float32 and bfloat16, ONNX Runtime float32 and INT8, OpenVINO float32
and INT8; the quality each costs against float32 on real data; training steps per second in float32 and bfloat16.

Latency (``--models``): U-Net-resnet34, DeepLabV3+-resnet50 and SegFormer-B0 at 512 x 512 (12 classes), the SAM
ViT-B and MobileSAM image encoders at 1024 x 1024, and the demos' light Mask R-CNN (ResNet-18 FPN) at 512 x 512, at
batch 1 and batch 8 (``--batch``), the median of ``--repeats`` after a warm-up. torch runs as omniseg's Predictor does
(BatchNorm folded into convolutions, channels-last; bfloat16 under autocast); the runtimes run the model exported at
batch 1, as omniseg's backends run tiles: a batch of 8 is 8 calls. ONNX Runtime INT8 is static QDQ quantisation with
per-channel weights; OpenVINO INT8 is NNCF's; OpenVINO float32 is compiled with the float32 inference hint (it would
pick bfloat16 on this processor otherwise). The detector has no exported form (torch only).

Quality (``--camvid-run``, a U-Net-resnet34 run trained on CamVid, e.g. ``omniseg train --data ../shared/data/camvid
--model unet --encoder resnet34 --time-budget 300 --out runs/camvid_r34``): the U-Net-resnet34 rows then time that
run's model, and each backend's predictions on CamVid's val images are compared with float32 torch's (pixel
agreement, mIoU difference), INT8 calibrated on 32 training tiles. SAM (random weights: none can be downloaded here)
answers a 4 x 4 point grid on the BSDS photos with each encoder's embedding and the float32 decoder: the mean mask IoU
of each to float32's.

Training: a training step (forward, CE + Dice, backward, AdamW) of the semantic demo's U-Net (64 x 64) and of
U-Net-resnet18 (256 x 256), batch 8, in float32 and in bfloat16 (autocast, loss in float32): steps per second, the
best of three measurements each.

    python benchmarks/cpu_precision.py --camvid-run runs/camvid_r34

Writes ``benchmarks/results/cpu_precision.json`` and ``.md``; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from omniseg.core.precision import autocast, bf16_capable
from omniseg.inference.deploy.export import export_onnx
from omniseg.inference.deploy.optimize import fold_batchnorm
from omniseg.inference.deploy.quantize import export_openvino, quantize_onnx_int8
from omniseg.inference.deploy.runtimes import OnnxTiles, OpenVinoTiles
from omniseg.models import create_model, load_model

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
RESULTS = Path(__file__).parent / "results"
BACKENDS = ("torch32", "torch_bf16", "ort32", "ort_int8", "ov32", "ov_int8")
MODELS = {  # name -> (builder, input side, conv net: channels-last and BatchNorm folding)
    "unet_r34": (lambda: create_model("unet", num_classes=12, encoder="resnet34"), 512, True),
    "deeplabv3plus_r50": (lambda: create_model("deeplabv3plus", num_classes=12, encoder="resnet50"), 512, True),
    "segformer_b0": (lambda: create_model("segformer_b0", num_classes=12), 512, False),
    "sam_vit_b_encoder": (lambda: create_model("sam_vit_b").image_encoder, 1024, False),
    "mobile_sam_encoder": (lambda: create_model("mobile_sam").image_encoder, 1024, False),
    "mask_rcnn_light": (None, 512, False),
}


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def light_detector() -> torch.nn.Module:
    from omniseg.engine.demo import LIGHT_DETECTOR

    return create_model("maskrcnn", num_classes=5, encoder="resnet18", **{**LIGHT_DETECTOR, "min_size": 512, "max_size": 512})


def torch_model(name: str, model: torch.nn.Module | None) -> tuple[torch.nn.Module, bool]:
    builder, side, conv = MODELS[name]
    torch.manual_seed(0)
    model = (model or (builder() if builder else light_detector())).eval()
    if conv:
        model = fold_batchnorm(model, torch.randn(1, 3, 64, 64)).to(memory_format=torch.channels_last)
    return model, conv


def sam_input(image: np.ndarray) -> np.ndarray:
    """A uint8 ``[H, W, 3]`` photo as SAM's image encoder takes it (as ``Sam.encode_image`` prepares it): the longest
    side resized to 1024, normalised, zero-padded to 1024 x 1024."""
    from PIL import Image

    from omniseg.models.promptable.sam import longest_side_shape

    h, w = longest_side_shape(image.shape[0], image.shape[1], 1024)
    x = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR), np.float32)
    x = (x - np.array([123.675, 116.28, 103.53], np.float32)) / np.array([58.395, 57.12, 57.375], np.float32)
    out = np.zeros((1, 3, 1024, 1024), np.float32)
    out[0, :, :h, :w] = x.transpose(2, 0, 1)
    return out


def calibration(name: str, side: int, count: int, camvid_run: Path | None) -> list[np.ndarray]:
    """Calibration tiles: the CamVid run's own pipeline for its model, BSDS photos as SAM takes them for SAM's
    encoders, else CamVid training images (ImageNet statistics) resized to the model's side."""
    from omniseg.data.imageio import read_image
    from omniseg.inference.deploy.quantize import calibration_tiles

    if camvid_run is not None and name == "unet_r34":
        return calibration_tiles(SHARED / "camvid", load_model(camvid_run).card, size=(side, side), samples=count)
    if "sam" in name:
        photos = sorted((SHARED / "bsds500" / "images" / "train").glob("*.jpg"))
        return [sam_input(read_image(photos[k % len(photos)]).permute(1, 2, 0).numpy()) for k in range(count)]
    files = sorted((SHARED / "camvid" / "train").glob("*.png"))
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    tiles = []
    for k in range(count):
        image = read_image(files[k % len(files)]).float()[None] / 255
        image = torch.nn.functional.interpolate(image, size=(side, side), mode="bilinear")[0]
        tiles.append(((image - mean) / std)[None].numpy())
    return tiles


def measure_latency(name: str, backends: list[str], batches: list[int], repeats: int, samples: int, camvid_run: Path | None,
                    folder: Path, console: Console) -> tuple[dict, dict]:
    """``{backend: {batch: seconds}}`` of one model, and the exported files (for the quality measurements)."""
    side = MODELS[name][1]
    trained = load_model(camvid_run) if camvid_run is not None and name == "unet_r34" else None
    model, _ = torch_model(name, trained)
    detector = MODELS[name][0] is None
    rows: dict[str, dict] = {}
    files: dict[str, Path] = {}
    for backend in backends:
        rows[backend] = {}
        if backend.startswith("torch"):
            precision = "bf16" if backend == "torch_bf16" else "32"
            if precision == "bf16" and not bf16_capable("cpu"):
                continue
            for batch in batches:
                if detector:
                    images = [torch.rand(3, side, side) for _ in range(batch)]
                    forward = lambda: model(images)  # noqa: E731
                else:
                    x = torch.randn(batch, 3, side, side).contiguous(memory_format=torch.channels_last if MODELS[name][2] else torch.contiguous_format)
                    forward = lambda: model(x)  # noqa: E731

                def run() -> None:
                    with torch.inference_mode(), autocast(precision, torch.device("cpu")):
                        forward()
                rows[backend][batch] = median_seconds(run, repeats)
                console.print(f"  {name} {backend} batch {batch}: {rows[backend][batch]:.3f} s")
            continue
        if detector:
            continue
        float32 = folder / f"{name}.onnx"
        if not float32.exists():
            export_onnx(model.to(memory_format=torch.contiguous_format), float32, torch.randn(1, 3, side, side))
        int8 = backend.endswith("int8")
        if backend.startswith("ort"):
            path = folder / f"{name}_int8.onnx" if int8 else float32
            if int8 and not path.exists():
                quantize_onnx_int8(float32, path, calibration(name, side, samples, camvid_run))
            tiles = OnnxTiles(path)
        else:
            path = folder / f"{name}_{'int8' if int8 else 'fp32'}.xml"
            if not path.exists():
                export_openvino(float32, path, calibration(name, side, samples, camvid_run) if int8 else None)
            tiles = OpenVinoTiles(path, precision="32" if not int8 else "auto")
        files[backend] = path
        tile = np.random.default_rng(0).standard_normal((1, 3, side, side)).astype(np.float32)
        for batch in batches:
            rows[backend][batch] = median_seconds(lambda: [tiles.run(tile) for _ in range(batch)], repeats)
            console.print(f"  {name} {backend} batch {batch}: {rows[backend][batch]:.3f} s")
    return rows, files


def semantic_quality(camvid_run: Path, files: dict, console: Console) -> dict:
    """Each backend's CamVid val predictions against float32 torch's (pixel agreement, mIoU difference)."""
    from omniseg.inference import Predictor
    from omniseg.inference.evaluate.exports import prediction_agreement

    reference = Predictor(camvid_run, device="cpu", precision="32")
    candidates = {"torch_bf16": lambda: Predictor(camvid_run, device="cpu", precision="bf16")}
    for backend, path in files.items():
        runtime = "onnxruntime" if backend.startswith("ort") else "openvino"
        candidates[backend] = lambda runtime=runtime, path=path: Predictor(camvid_run, device="cpu", backend=runtime, exported=path)
    out = {}
    for backend, make in candidates.items():
        report = prediction_agreement(reference, make(), SHARED / "camvid", tile=512)
        out[backend] = {"pixel_agreement": report["pixel_agreement"], "miou_difference": report["miou"]["difference"],
                        "miou_float32": report["miou"]["reference"], "images": report["images"]}
        console.print(f"  CamVid {backend}: {report['pixel_agreement']:.4%} of pixels agree, mIoU {report['miou']['candidate']:.4f} "
                      f"against {report['miou']['reference']:.4f}")
        own = {"ort_int8": "ort32", "ov_int8": "ov32"}.get(backend)
        if own in candidates:  # INT8 against the same runtime's float32 export: the same padded tiles on both sides
            report = prediction_agreement(candidates[own](), make(), SHARED / "camvid", tile=512)
            out[backend]["against_" + own] = {"pixel_agreement": report["pixel_agreement"],
                                              "miou_difference": report["miou"]["difference"]}
            console.print(f"  CamVid {backend} against {own}: {report['pixel_agreement']:.4%} of pixels agree, mIoU difference "
                          f"{report['miou']['difference']:+.4f}")
    return out


def sam_quality(name: str, files: dict, console: Console, images: int = 8) -> dict:
    """Mean mask IoU to float32 over a 4 x 4 point grid on the BSDS photos, per encoder backend."""
    from omniseg.data.imageio import read_image
    from omniseg.inference.promptable.prompt_predictor import PromptPredictor

    torch.manual_seed(0)
    sam = create_model("sam_vit_b" if "vit_b" in name else "mobile_sam").eval()
    photos = sorted((SHARED / "bsds500" / "images" / "train").glob("*.jpg"))[:images]
    reference = PromptPredictor(sam, device="cpu", precision="32")
    encoders = {"torch_bf16": PromptPredictor(sam, device="cpu", precision="bf16")}
    runtimes = {backend: (OnnxTiles(path) if backend.startswith("ort") else OpenVinoTiles(path, precision="auto"))
                for backend, path in files.items()}
    ious: dict[str, list[float]] = {backend: [] for backend in [*encoders, *runtimes]}
    for photo in photos:
        image = read_image(photo).permute(1, 2, 0).numpy()
        reference.set_image(image)
        features, original, input_size = reference.features, reference.original_size, reference.input_size
        h, w = image.shape[:2]
        grid = [[(i + 0.5) * w / 4, (j + 0.5) * h / 4] for j in range(4) for i in range(4)]
        truth = [reference.predict(points=[p], multimask=False).masks[0] for p in grid]
        embeddings = {backend: p.encode(image)[0] for backend, p in encoders.items()}
        x = sam_input(image)
        for backend, runtime in runtimes.items():
            embeddings[backend] = torch.from_numpy(np.ascontiguousarray(runtime.run(x)))
        for backend, embedding in embeddings.items():
            reference.use_embedding(embedding, original, input_size)
            for p, t in zip(grid, truth):
                m = reference.predict(points=[p], multimask=False).masks[0]
                union = (m | t).sum()
                ious[backend].append(float((m & t).sum() / union) if union else 1.0)
        reference.use_embedding(features, original, input_size)
    out = {backend: {"mask_iou_to_float32": float(np.mean(v)), "masks": len(v)} for backend, v in ious.items()}
    for backend, v in out.items():
        console.print(f"  {name} {backend}: mean mask IoU to float32 {v['mask_iou_to_float32']:.4f} over {v['masks']} masks")
    return out


def training_speed(console: Console) -> dict:
    from omniseg.engine.demo import demo_config
    from omniseg.plan import Candidate
    from omniseg.plan.measure import step_seconds

    demo = demo_config("semantic", "unused", "unused", size=64, steps=1).model
    cases = {"demo U-Net 64x64": (Candidate("unet", dict(demo.kwargs)), 64, 5),
             "U-Net-resnet18 256x256": (Candidate("unet", {"encoder": "resnet18"}), 256, 2)}
    out = {}
    for label, (candidate, side, classes) in cases.items():
        row = {}
        for precision in ("32-true", "bf16-mixed"):
            seconds = min(step_seconds(candidate, channels=3, num_classes=classes, shape=(side, side), batch=8,
                                       precision=precision) for _ in range(3))
            row[precision] = {"step_seconds": seconds, "steps_per_second": 1 / seconds}
        row["bf16_speedup"] = row["32-true"]["step_seconds"] / row["bf16-mixed"]["step_seconds"]
        out[label] = row
        console.print(f"  training {label}: {row['32-true']['steps_per_second']:.2f} steps/s float32, "
                      f"{row['bf16-mixed']['steps_per_second']:.2f} bfloat16 ({row['bf16_speedup']:.2f}x)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--batch", default="1,8", help="batch sizes (the SAM ViT-B encoder: batch 1 only)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=32, help="INT8 calibration tiles")
    parser.add_argument("--camvid-run", type=Path, help="a U-Net-resnet34 run trained on CamVid (quality, and its latency)")
    parser.add_argument("--no-training", action="store_true", help="skip the training steps")
    parser.add_argument("--name", default="cpu_precision")
    args = parser.parse_args()
    console = Console()
    models, backends = args.models.split(","), args.backends.split(",")
    batches = [int(b) for b in args.batch.split(",")]
    results = {"machine": {"processor": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                           "cpu_capability": torch.backends.cpu.get_cpu_capability(), "bf16": bf16_capable("cpu")},
               "latency_seconds": {}, "quality": {}, "training": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in models:
            console.print(f"[bold]{name}[/]")
            rows, files = measure_latency(name, backends, [1] if name == "sam_vit_b_encoder" else batches, args.repeats,
                                          args.samples, args.camvid_run, Path(tmp), console)
            results["latency_seconds"][name] = rows
            if name == "unet_r34" and args.camvid_run is not None:
                results["quality"][name] = semantic_quality(args.camvid_run, files, console)
            elif "sam" in name:
                results["quality"][name] = sam_quality(name, files, console)
    if not args.no_training:
        results["training"] = training_speed(console)
    table = Table(title="Latency in seconds (speed-up over torch float32) and quality against float32")
    for column in ["model", "batch", *backends]:
        table.add_column(column)
    lines = ["| model | batch | " + " | ".join(backends) + " |", "|" + " --- |" * (len(backends) + 2)]
    for name, rows in results["latency_seconds"].items():
        base = rows.get("torch32", {})
        for batch in sorted({b for r in rows.values() for b in r}):
            cells = []
            for backend in backends:
                seconds = rows.get(backend, {}).get(batch)
                cells.append("n/a" if seconds is None else f"{seconds:.3f} ({base[batch] / seconds:.2f}x)" if batch in base else f"{seconds:.3f}")
            table.add_row(name, str(batch), *cells)
            lines.append(f"| {name} | {batch} | " + " | ".join(cells) + " |")
        quality = results["quality"].get(name)
        if quality:
            cells = []
            for backend in backends:
                q = quality.get(backend)
                cells.append("" if q is None else f"IoU {q['mask_iou_to_float32']:.3f}" if "mask_iou_to_float32" in q
                             else f"{q['pixel_agreement']:.2%} agree, mIoU {q['miou_difference']:+.4f}")
            table.add_row(name, "quality", *cells)
            lines.append(f"| {name} | quality | " + " | ".join(cells) + " |")
    console.print(table)
    for label, row in results["training"].items():
        lines.append(f"\nTraining {label}, batch 8: {row['32-true']['steps_per_second']:.2f} steps/s float32, "
                     f"{row['bf16-mixed']['steps_per_second']:.2f} bfloat16 ({row['bf16_speedup']:.2f}x)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=2))
    (RESULTS / f"{args.name}.md").write_text("\n".join([table.title, "", *lines, ""]))


if __name__ == "__main__":
    main()
