"""The end-of-training report: final validation of the best weights, plots and sample overlays (semantic, instance and panoptic runs)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import torch

from omniseg.config import RunConfig
from omniseg.core.labels import class_ids
from omniseg.data.transforms import InstanceTransform, TransformedDataset, eval_transforms_for, semantic_only
from omniseg.inference.evaluate import evaluate_instances, evaluate_model, evaluate_panoptic
from omniseg.inference.evaluate.clicks import evaluate_clicks, interactive_session
from omniseg.data.imageio import rgb_uint8
from omniseg.inference.promptable.prompt_predictor import PromptPredictor
from omniseg.metrics.clicks import next_click
from omniseg.metrics.panoptic import panoptic_ground_truth
from omniseg.models.hub import load_model
from omniseg.models.panoptic.merge import merge_prediction, segment_masks
from omniseg.models.semantic.base import is_volumetric
from omniseg.viz.overlay import grey_to_rgb
from omniseg.viz.plots import plot_click_curves, plot_confusion, plot_curves, plot_instances, plot_sample


def write_report(run_dir: Path, val_set: torch.utils.data.Dataset, *, config: RunConfig, extra: dict) -> dict:
    """Evaluate ``model.safetensors`` on ``val_set`` (as ``omniseg eval`` does, so it reproduces the figures
    exactly) and write ``curves.png``, ``confusion.png`` and ``samples/``; returns the metrics report (with
    ``extra`` merged in)."""
    model = load_model(run_dir)
    info = model.card.info
    volumetric = is_volumetric(model)
    normalised = TransformedDataset(val_set, eval_transforms_for(volumetric, mean=config.data.mean, std=config.data.std,
                                                                 channels=config.data.channels))
    confusion = evaluate_model(model, normalised, num_classes=info.num_classes, ignore_index=info.ignore_index,
                               batch_size=config.data.eval_batch_size)
    matrix = confusion.matrix
    if (run_dir / "history.csv").exists():
        plot_curves(run_dir / "history.csv", run_dir / "curves.png")
    plot_confusion(matrix.numpy(), info.class_names, run_dir / "confusion.png")
    samples = run_dir / "samples"
    samples.mkdir(exist_ok=True)
    with torch.inference_mode():
        for index in range(min(config.train.num_samples, len(val_set))):
            raw = val_set[index]
            normal = normalised.transform(semantic_only(raw))
            pred = class_ids(model(normal["image"].unsqueeze(0)), 1)[0].numpy()
            truth = raw["mask"].numpy() if "mask" in raw else None
            if volumetric:  # the middle slice along depth, the first channel as grey
                middle = pred.shape[0] // 2
                pred, truth = pred[middle], truth[middle] if truth is not None else None
                image = grey_to_rgb(raw["image"][0, middle].numpy())
            else:
                image = rgb_uint8(raw["image"])
            plot_sample(image, truth, pred, info.palette, info.class_names,
                        samples / f"{raw['meta']['id'] or index}.png", ignore_index=info.ignore_index)
    return {"split": "val", **confusion.report(info.class_names), **extra}



def write_instance_report(run_dir: Path, val_set: torch.utils.data.Dataset, *, config: RunConfig, extra: dict) -> dict:
    """Evaluate ``model.safetensors`` of an instance run (COCO mask and box AP) or a panoptic run (PQ, and AP
    of its instances) on ``val_set``, and write ``curves.png`` and ``samples/`` (prediction beside the truth)."""
    model = load_model(run_dir)
    info = model.card.info
    panoptic = model.card.task == "panoptic"
    evaluate = partial(evaluate_panoptic, info=info) if panoptic else partial(evaluate_instances, class_names=info.class_names)
    scores = evaluate(model, val_set, batch_size=config.data.eval_batch_size)
    if (run_dir / "history.csv").exists():
        curves = ("val_pq", "val_pq_things", "val_pq_stuff", "val_map") if panoptic else ("val_map", "val_map50", "val_box_map")
        plot_curves(run_dir / "history.csv", run_dir / "curves.png", metrics=curves)
    samples = run_dir / "samples"
    samples.mkdir(exist_ok=True)
    to_input = InstanceTransform(semantic=panoptic, ignore_index=info.ignore_index)
    with torch.inference_mode():
        for index in range(min(config.train.num_samples, len(val_set))):
            raw = val_set[index]
            image, target = to_input(raw)
            output = model([image])[0]
            truth_masks, truth_labels = target["masks"].bool().numpy(), target["labels"].tolist()
            if panoptic:  # segments (stuff and things) drawn as regions
                ids, segments = merge_prediction(output, info.things, **model.merge_options)
                masks, labels = segment_masks(ids, segments)
                scores_shown = [s["score"] if s["isthing"] else None for s in segments]
                truth_ids, truth_segments = panoptic_ground_truth(target["semantic"].numpy(), truth_masks, truth_labels,
                                                                  things=info.things, ignore_index=info.ignore_index)
                truth_masks, truth_labels = segment_masks(truth_ids, [{"id": k, "category_id": v.category} for k, v in truth_segments.items()])
            else:
                keep = output["scores"] >= 0.5
                masks, labels, scores_shown = (output["masks"][keep, 0] >= 0.5).numpy(), output["labels"][keep].tolist(), output["scores"][keep].tolist()
            plot_instances(rgb_uint8(raw["image"]), masks, labels, scores_shown, info.class_names,
                           samples / f"{raw['meta']['id'] or index}.png", truth=(truth_masks, truth_labels))
    return {"task": model.card.task, "split": "val", **scores, **extra}


def write_promptable_report(run_dir: Path, val_set: torch.utils.data.Dataset, *, config: RunConfig, extra: dict) -> dict:
    """Click every object of ``val_set`` with the saved promptable model (as ``omniseg eval`` does) and write
    ``curves.png``, ``clicks.png`` (mIoU after k clicks) and ``samples/`` (each object's one-click mask beside
    the truth)."""
    predictor = PromptPredictor(load_model(run_dir))
    scores = evaluate_clicks(predictor, val_set, max_clicks=config.prompt.max_clicks)
    if (run_dir / "history.csv").exists():
        plot_curves(run_dir / "history.csv", run_dir / "curves.png", metrics=("val_miou_1", "val_miou_3", "val_miou_5"))
    plot_click_curves({"val": scores["miou_by_clicks"]}, run_dir / "clicks.png")
    samples = run_dir / "samples"
    samples.mkdir(exist_ok=True)
    for index in range(min(config.train.num_samples, len(val_set))):
        raw = val_set[index]
        truth = np.asarray(raw["instances"]["masks"], bool)
        truth = truth[truth.reshape(len(truth), -1).any(1)]
        predictor.set_image(raw["image"])
        # each object after the simulated person's first click
        masks = [interactive_session(predictor)([next_click(np.zeros_like(mask), mask)]) for mask in truth]
        plot_instances(rgb_uint8(raw["image"]), np.asarray(masks, bool).reshape(-1, *truth.shape[1:]), [1] * len(masks), None,
                       ["background", "object"], samples / f"{raw['meta']['id'] or index}.png", truth=(truth, [1] * len(truth)))
    return {"split": "val", **scores, **extra}
