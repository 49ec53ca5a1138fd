"""The end-of-training report: final validation of the best weights, plots and sample overlays (semantic and instance runs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from omniseg.config import RunConfig
from omniseg.data.transforms import InstanceTransform, TransformedDataset, eval_transforms_for, semantic_only
from omniseg.inference.evaluate import evaluate_instances, evaluate_model
from omniseg.metrics import metrics_report
from omniseg.models.hub import load_model
from omniseg.models.semantic.base import is_volumetric
from omniseg.viz.overlay import grey_to_rgb
from omniseg.viz.plots import plot_confusion, plot_curves, plot_instances, plot_sample


def write_report(run_dir: Path, val_set: torch.utils.data.Dataset, *, config: RunConfig, extra: dict) -> dict:
    """Evaluate ``model.safetensors`` on ``val_set`` and write ``curves.png``, ``confusion.png`` and
    ``samples/``; returns the metrics report (with ``extra`` merged in)."""
    model = load_model(run_dir)
    info = model.card.info
    volumetric = is_volumetric(model)
    normalised = TransformedDataset(val_set, eval_transforms_for(volumetric, mean=config.data.mean, std=config.data.std))
    matrix = evaluate_model(
        model, normalised, num_classes=info.num_classes, ignore_index=info.ignore_index,
        batch_size=config.data.eval_batch_size,
    ).matrix
    if (run_dir / "history.csv").exists():
        plot_curves(run_dir / "history.csv", run_dir / "curves.png")
    plot_confusion(matrix.numpy(), info.class_names, run_dir / "confusion.png")
    samples = run_dir / "samples"
    samples.mkdir(exist_ok=True)
    with torch.inference_mode():
        for index in range(min(config.train.num_samples, len(val_set))):
            raw = val_set[index]
            normal = normalised.transform(semantic_only(raw))
            pred = model(normal["image"].unsqueeze(0)).argmax(1)[0].numpy()
            truth = raw["mask"].numpy() if "mask" in raw else None
            if volumetric:  # the middle slice along depth, the first channel as grey
                middle = pred.shape[0] // 2
                pred, truth = pred[middle], truth[middle] if truth is not None else None
                image = grey_to_rgb(raw["image"][0, middle].numpy())
            else:
                image = raw["image"].permute(1, 2, 0).numpy().astype(np.uint8)
            plot_sample(image, truth, pred, info.palette, info.class_names,
                        samples / f"{raw['meta']['id'] or index}.png", ignore_index=info.ignore_index)
    return {"split": "val", **metrics_report(matrix, info.class_names), **extra}



def write_instance_report(run_dir: Path, val_set: torch.utils.data.Dataset, *, config: RunConfig, extra: dict) -> dict:
    """Evaluate ``model.safetensors`` of an instance run on ``val_set`` (COCO mask and box AP), and write
    ``curves.png`` and ``samples/`` (predicted instances beside the truth)."""
    model = load_model(run_dir)
    info = model.card.info
    scores = evaluate_instances(model, val_set, class_names=info.class_names, batch_size=config.data.eval_batch_size)
    if (run_dir / "history.csv").exists():
        plot_curves(run_dir / "history.csv", run_dir / "curves.png", metrics=("val_map", "val_map50", "val_box_map"))
    samples = run_dir / "samples"
    samples.mkdir(exist_ok=True)
    to_input = InstanceTransform()
    with torch.inference_mode():
        for index in range(min(config.train.num_samples, len(val_set))):
            raw = val_set[index]
            image, target = to_input(raw)
            output = model([image])[0]
            keep = output["scores"] >= 0.5
            plot_instances(raw["image"].permute(1, 2, 0).numpy().astype(np.uint8), (output["masks"][keep, 0] >= 0.5).numpy(),
                           output["labels"][keep].tolist(), output["scores"][keep].tolist(), info.class_names,
                           samples / f"{raw['meta']['id'] or index}.png", truth=(target["masks"].bool().numpy(), target["labels"].tolist()))
    return {"task": "instance", "split": "val", **scores, **extra}
