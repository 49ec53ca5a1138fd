"""Segment Anything on the CPU: omniseg's native SAM against the official ``segment-anything`` package with the
same random weights, in the same run: the image encoder (ViT-B, 1024 px), one decoder call (a click, three
proposals, masks at the image size) and the automatic mask generator (32 x 32 points) on one 1024 x 768 image;
MobileSAM's TinyViT encoder is timed alone (its package is not on PyPI). Each row also checks that the outputs
agree (largest logit difference; the generators' masks compared as sets). Nothing is asserted.

Random weights give near-constant IoU predictions, so the generator's IoU filter is set to the 75th percentile
of the predictions of the first batch (a quarter of the proposals pass, as with a trained model on a busy
image) and the stability filter to 0; a second generator row keeps every proposal (no filtering to exploit).

    python benchmarks/promptable.py [--repeats 3] [--out benchmarks/results/promptable.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table


def timed(function, repeats: int) -> tuple[float, object]:
    """Median seconds over ``repeats`` calls after one warm-up (``repeats`` 0: one call, no warm-up), and the last result."""
    if repeats:
        function()
    times, result = [], None
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def scene(height: int = 768, width: int = 1024) -> np.ndarray:
    """A busy synthetic photograph: gradients, discs and rectangles of many colours."""
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[:height, :width]
    image = np.stack([xs / width * 120, ys / height * 120, np.full_like(xs, 60.0)], -1)
    for _ in range(40):
        colour = rng.integers(0, 255, 3)
        cx, cy, r = rng.integers(0, width), rng.integers(0, height), rng.integers(15, 120)
        if rng.random() < 0.5:
            image[(xs - cx) ** 2 + (ys - cy) ** 2 < r ** 2] = colour
        else:
            image[max(cy - r, 0): cy + r, max(cx - r, 0): cx + r] = colour
    return image.astype(np.uint8)


def main() -> None:
    from segment_anything import SamAutomaticMaskGenerator, SamPredictor, sam_model_registry

    from omniseg.inference.promptable.automatic_masks import AutomaticMaskGenerator
    from omniseg.inference.promptable.prompt_predictor import PromptPredictor
    from omniseg.models import create_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "promptable.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    official = sam_model_registry["vit_b"]().eval()
    ours = create_model("sam_vit_b")
    ours.load_state_dict(official.state_dict())
    ours.prompt_encoder.pe_layer.positional_encoding_gaussian_matrix.copy_(official.prompt_encoder.pe_layer.positional_encoding_gaussian_matrix)
    image = scene()
    rows = []

    def row(name: str, peer: float | None, own: float, agreement: str) -> None:
        rows.append({"what": name, "official_s": peer, "omniseg_s": own, "speedup": None if peer is None else peer / own,
                     "agreement": agreement})

    with torch.no_grad():
        x = torch.randn(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(1))
        peer_s, peer_out = timed(lambda: official.image_encoder(x), args.repeats)
        own_s, own_out = timed(lambda: ours.image_encoder(x), args.repeats)
        row("ViT-B image encoder, 1024 px", peer_s, own_s, f"max |diff| {float((peer_out - own_out).abs().max()):.1e}")
        tiny = create_model("mobile_sam")
        own_s, _ = timed(lambda: tiny.image_encoder(x), args.repeats)
        row("TinyViT (MobileSAM) image encoder, 1024 px", None, own_s, "no peer installable")

    official_predictor, own_predictor = SamPredictor(official), PromptPredictor(ours, device="cpu")
    official_predictor.set_image(image)
    own_predictor.set_image(image)
    point = np.array([[512.0, 384.0]])
    peer_s, peer_out = timed(lambda: official_predictor.predict(point_coords=point, point_labels=np.array([1])), args.repeats * 5)
    own_s, own_out = timed(lambda: own_predictor.predict(points=point, labels=[1]), args.repeats * 5)
    row("decoder call: one click, 3 masks at 1024 x 768", peer_s, own_s,
        f"max |diff| {float(np.abs(peer_out[2] - own_out.low_res_logits).max()):.1e}; "
        f"{int((peer_out[0] != own_out.masks).sum())} of {own_out.masks.size} mask pixels differ")

    scores = own_predictor.predict(points=np.stack(np.meshgrid(np.linspace(16, 1008, 8), np.linspace(12, 756, 8)), -1).reshape(-1, 1, 2)).scores
    iou_threshold = float(np.quantile(scores, 0.75))
    for label, threshold in ((f"automatic, 32 x 32 points, IoU filter {iou_threshold:.3f}", iou_threshold), ("automatic, 32 x 32 points, no filter", 0.0)):
        options = {"points_per_side": 32, "pred_iou_thresh": threshold, "stability_score_thresh": 0.0}
        peer_s, peer_out = timed(lambda: SamAutomaticMaskGenerator(official, output_mode="coco_rle", **options).generate(image), 0)
        own_s, own_out = timed(lambda: AutomaticMaskGenerator(PromptPredictor(ours, device="cpu"), **options).generate(image), 0)
        same = sorted(m["segmentation"]["counts"] for m in peer_out) == sorted(m["segmentation"]["counts"] for m in own_out)
        row(label, peer_s, own_s, f"{len(own_out)} masks, same as official: {same}")

    table = Table("what", "official s", "omniseg s", "speed-up", "agreement", title="Segment Anything on the CPU")
    for r in rows:
        table.add_row(r["what"], "-" if r["official_s"] is None else f"{r['official_s']:.3f}", f"{r['omniseg_s']:.3f}",
                      "-" if r["speedup"] is None else f"{r['speedup']:.2f}x", r["agreement"])
    Console().print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                               "torch": torch.__version__, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
