"""Evaluating a run directory on a dataset split: semantic metrics, COCO AP or panoptic quality, as the run's card says."""

from __future__ import annotations

from pathlib import Path

import torch

from omniseg.config import load_config
from omniseg.data.formats import load_dataset
from omniseg.data.transforms import TransformedDataset, eval_transforms_for
from omniseg.errors import ConfigError, DataError
from omniseg.inference.evaluate.clicks import evaluate_clicks
from omniseg.inference.evaluate.objects import evaluate_instances, evaluate_panoptic
from omniseg.inference.evaluate.semantic import evaluate_model
from omniseg.models.hub import load_model
from omniseg.models.semantic.base import check_dimensions


def evaluate_run(
    run_dir: str | Path | None, data: str | Path, *, split: str = "val", format: str = "auto", batch_size: int = 4,
    device: str | torch.device = "cpu", ignore_index: int | None = None, arch: str | None = None, engine: str | None = None,
    max_clicks: int = 20,
) -> dict:
    """The metrics report of the model in ``run_dir`` on ``split`` of the dataset at ``data``: semantic
    metrics, COCO mask and box AP for an instance run, PQ (and AP) for a panoptic run, the click table (mIoU after
    1/3/5 clicks, NoC@85/90, at most ``max_clicks`` an object) for a promptable run on any instance data (the run's
    card says which). A Segment Anything checkpoint file (``arch`` names its architecture unless the file has an
    official name) or a weight-free ``engine`` ("grabcut", "random-walker", with ``run_dir`` None) is measured in
    clicks too.

    The truth's void value is the dataset's own; when it differs from the one the run trained with, pass
    ``ignore_index`` to say which the evaluation uses (it then replaces the dataset's).
    """
    if engine is not None or (run_dir is not None and Path(run_dir).is_file()):
        from omniseg.inference.prompt_predictor import load_prompt_model

        predictor = load_prompt_model(run_dir, arch=arch, engine=engine, device=str(device))
        source = load_dataset(data, format=format, ignore_index=ignore_index)
        return {"split": split, **evaluate_clicks(predictor, source.dataset(split), max_clicks=max_clicks)}
    if run_dir is None:
        raise ConfigError("give a run directory, a promptable checkpoint file or a prompt engine to evaluate")
    model = load_model(run_dir)
    info = model.card.info
    source = load_dataset(data, format=format, ignore_index=ignore_index, **_run_split(run_dir))
    if model.card.task == "promptable":  # any instance data: the objects are clicked, whatever their classes
        from omniseg.inference.prompt_predictor import PromptPredictor

        return {"split": split, **evaluate_clicks(PromptPredictor(model, device=str(device)), source.dataset(split),
                                                  max_clicks=max_clicks)}
    if source.info.num_classes != info.num_classes:
        raise DataError(
            f"{data} has {source.info.num_classes} classes but the model in {run_dir} predicts "
            f"{info.num_classes}; evaluate on data with the same classes"
        )
    if ignore_index is None and source.info.ignore_index != info.ignore_index:
        raise DataError(
            f"{data} marks unlabelled pixels with {source.info.ignore_index} but the run in {run_dir} was trained with "
            f"ignore_index {info.ignore_index}; pass --ignore-index {source.info.ignore_index} (the data's) or "
            f"--ignore-index {info.ignore_index} (the run's) to choose"
        )
    if model.card.task == "instance":
        scores = evaluate_instances(model, source.dataset(split), class_names=info.class_names, batch_size=batch_size,
                                    device=device)
        return {"task": "instance", "split": split, **scores}
    if model.card.task == "panoptic":
        scores = evaluate_panoptic(model, source.dataset(split), info=source.info, batch_size=batch_size, device=device)
        return {"task": "panoptic", "split": split, **scores}
    check_dimensions(model, volumetric_data=source.volumetric, data=str(data), name=f"the model in {run_dir}")
    normalise = {} if source.volumetric else {**dict(zip(("mean", "std"), model.card.normalisation(run_dir))),
                                              "channels": model.card.kwargs.get("in_channels", 3)}
    dataset = TransformedDataset(source.dataset(split), eval_transforms_for(source.volumetric, **normalise))
    matrix = evaluate_model(model, dataset, num_classes=info.num_classes, ignore_index=source.info.ignore_index,
                            batch_size=batch_size, device=device)
    return {"split": split, **matrix.report(info.class_names)}


def _run_split(run_dir: str | Path) -> dict:
    """The seeded-split settings the run trained with (data without split folders is split the same way)."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return {}
    config = load_config(path)
    return {"val_fraction": config.data.val_fraction, "split_seed": config.data.split_seed}
