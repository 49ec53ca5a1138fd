"""How far a faster model strays from float32: the same images predicted by the float32 PyTorch model and by a
candidate (an INT8 or OpenVINO export, a bfloat16 PyTorch model), compared pixel by pixel and scored against the
labels. Every export writes this report beside its file (``<name>.agreement.json``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from omniseg.metrics import ConfusionMatrix, metrics_from_confusion


def data_of_run(run_dir: str | Path) -> dict | None:
    """The dataset a run trained on (``{"path", "format", "ignore_index"}`` from its config.yaml), or None when the
    run does not say or the data is not there."""
    from omniseg.config import flatten, load_values

    config = Path(run_dir) / "config.yaml"
    if not config.is_file():
        return None
    values = flatten(load_values(config))
    path = values.get("data.path")
    if not path or not Path(path).exists():
        return None
    return {"path": path, "format": values.get("data.format", "auto"), "ignore_index": values.get("data.ignore_index")}


def prediction_agreement(reference, candidate, data: str | Path, *, images: int = 16, split: str | None = None,
                         tile: int | None = None, format: str = "auto", ignore_index: int | None = None) -> dict:
    """Compare two :class:`~omniseg.inference.prediction.predictor.Predictor` s of the same run on up to ``images``
    images of ``data`` (``split``; default val, else the first split), each predicted whole or by ``tile``.

    Returns ``{"images", "split", "pixel_agreement", "miou_to_reference", "miou": {"reference", "candidate",
    "difference"} (with labels), "per_image": [...]}``: the share of pixels where the class ids agree, the candidate's
    mIoU taking the reference's prediction as truth, and each one's mIoU against the labels (difference = candidate
    - reference)."""
    from omniseg.data.formats import load_dataset

    source = load_dataset(data, format=format, ignore_index=ignore_index)
    splits = source.splits()
    split = split or ("val" if "val" in splits else splits[0])
    dataset = source.dataset(split)
    info = reference.info
    to_reference = ConfusionMatrix(info.num_classes, ignore_index=None)
    scores = {name: ConfusionMatrix(info.num_classes, ignore_index=info.ignore_index) for name in ("reference", "candidate")}
    agree = total = 0
    per_image, labelled = [], True
    for index in range(min(images, len(dataset))):
        sample = dataset[index]
        image = sample["image"].as_subclass(torch.Tensor)
        ours = torch.from_numpy(reference.predict(image, tile=tile))
        theirs = torch.from_numpy(candidate.predict(image, tile=tile))
        same = int((ours == theirs).sum())
        agree, total = agree + same, total + ours.numel()
        to_reference.update(theirs, ours)
        per_image.append({"id": sample["meta"].get("id", str(index)), "pixel_agreement": same / ours.numel()})
        if "mask" in sample:
            truth = sample["mask"].as_subclass(torch.Tensor)
            scores["reference"].update(ours, truth)
            scores["candidate"].update(theirs, truth)
        else:
            labelled = False
    report = {"images": len(per_image), "split": split, "pixel_agreement": agree / max(total, 1),
              "miou_to_reference": metrics_from_confusion(to_reference.matrix, ignore_index=None)["miou"], "per_image": per_image}
    if labelled and per_image:
        miou = {name: metrics_from_confusion(m.matrix, ignore_index=info.ignore_index)["miou"] for name, m in scores.items()}
        report["miou"] = {**miou, "difference": miou["candidate"] - miou["reference"]}
    return report


def write_agreement(exported: str | Path, report: dict) -> Path:
    """``report`` as ``<exported stem>.agreement.json`` beside the exported file."""
    path = Path(exported).with_suffix(".agreement.json")
    path.write_text(json.dumps(report, indent=2, default=lambda v: float(v) if isinstance(v, np.floating) else str(v)))
    return path
