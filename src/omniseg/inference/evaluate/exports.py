"""How far a faster model strays from float32: the same images predicted by the float32 PyTorch model and by a
candidate (an INT8 or OpenVINO export, a bfloat16 PyTorch model), compared pixel by pixel and scored against the
labels. :func:`export_measured` (``omniseg export``) writes this report beside every 2D semantic export
(``<name>.agreement.json``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from omniseg.metrics import ConfusionMatrix, metrics_from_confusion


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


def export_measured(run_dir: str | Path, out: str | Path, *, agreement_images: int = 16, **options) -> dict:
    """:func:`~omniseg.inference.deploy.export.export_run` (``options``: format, size, quantize, calibration, samples,
    calibration_method), then, for a 2D semantic run with data at hand (``calibration``, else the run's own), its
    agreement with the float32 PyTorch model on up to ``agreement_images`` validation images predicted tile by tile
    at the exported size: ``<out stem>.agreement.json``, its path under ``"agreement"`` in the result, with
    ``"pixel_agreement"`` and ``"miou_difference"``."""
    from omniseg.inference.deploy.export import export_run
    from omniseg.inference.deploy.quantize import data_of_run
    from omniseg.inference.prediction.predictor import Predictor
    from omniseg.models.hub import load_model

    result = export_run(run_dir, out, **options)
    calibration = options.get("calibration")
    data = {"path": str(calibration), "format": "auto", "ignore_index": None} if calibration is not None else data_of_run(run_dir)
    model = load_model(run_dir)
    if data is None or model.card.task != "semantic" or len(result["input_shape"]) != 4 or result["format"] == "torch":
        return result
    reference = Predictor(model, device="cpu", precision="32")
    runtime = "onnxruntime" if result["format"] == "onnx" else "openvino"
    candidate = Predictor(model, device="cpu", backend=runtime, exported=result["file"])
    report = prediction_agreement(reference, candidate, data["path"], images=agreement_images, tile=result["input_shape"][-1],
                                  format=data["format"], ignore_index=data["ignore_index"])
    quantize = result["quantize"]
    report = {"file": result["file"], "format": result["format"], "quantize": quantize,
              "calibration": data["path"] if quantize else None,
              "calibration_samples": options.get("samples", 32) if quantize else None, **report}
    result["agreement"] = str(write_agreement(result["file"], report))
    result["pixel_agreement"] = report["pixel_agreement"]
    if "miou" in report:
        result["miou_difference"] = report["miou"]["difference"]
    return result
