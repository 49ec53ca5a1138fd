"""Evaluating a run directory on a dataset split: semantic metrics, COCO AP or panoptic quality, as the run's card says."""

from __future__ import annotations

from pathlib import Path

import torch

from omniseg.config import load_config
from omniseg.core.device import resolve_device
from omniseg.data.formats import load_dataset
from omniseg.data.transforms import TransformedDataset, eval_transforms_for
from omniseg.errors import ConfigError, DataError
from omniseg.inference.evaluate.clicks import evaluate_clicks
from omniseg.inference.evaluate.objects import evaluate_instances, evaluate_panoptic
from omniseg.inference.evaluate.semantic import evaluate_model
from omniseg.models.hub import load_model
from omniseg.models.semantic.base import check_dimensions


def evaluate_run(
    run_dir: str | Path | None, data: str | Path | None = None, *, split: str = "val", format: str | None = None,
    batch_size: int = 4, device: str | torch.device | None = None, ignore_index: int | None = None, arch: str | None = None, engine: str | None = None,
    max_clicks: int = 20,
) -> dict:
    """The metrics report of the model in ``run_dir`` on ``split`` of the dataset at ``data``: semantic
    metrics, COCO mask and box AP for an instance run, PQ (and AP) for a panoptic run, the click table (mIoU after
    1/3/5 clicks, NoC@85/90, at most ``max_clicks`` an object) for a promptable run on any instance data (the run's
    card says which). A Segment Anything checkpoint file (``arch`` names its architecture unless the file has an
    official name) or a weight-free ``engine`` ("grabcut", "random-walker", with ``run_dir`` None) is measured in
    clicks too.

    ``data`` None evaluates the run's own data; the run's own data (by path) is read with the run's data options
    (format, ignore_index, the seeded split), so it is seen as in training. On other data the truth's void value is
    the dataset's own; when it differs from the one the run trained with, pass ``ignore_index`` to say which the
    evaluation uses (it then replaces the dataset's). ``device`` None: CUDA when available, else the CPU.
    """
    device = resolve_device(device)
    if engine is not None or (run_dir is not None and Path(run_dir).is_file()):
        from omniseg.inference.promptable.prompt_predictor import load_prompt_model

        if data is None:
            raise ConfigError("a checkpoint file or a prompt engine has no data of its own: pass --data DATASET")
        predictor = load_prompt_model(run_dir, arch=arch, engine=engine, device=str(device))
        source = load_dataset(data, format=format or "auto", ignore_index=ignore_index)
        return {"split": split, **evaluate_clicks(predictor, source.dataset(split), max_clicks=max_clicks)}
    if run_dir is None:
        raise ConfigError("give a run directory, a promptable checkpoint file or a prompt engine to evaluate")
    if arch is not None:
        raise ConfigError(f"--arch names the architecture of a checkpoint file; {run_dir} is a run directory, whose "
                          "model.json names its own: leave --arch out")
    model = load_model(run_dir)
    info = model.card.info
    data, options = _run_data(run_dir, data, format=format, ignore_index=ignore_index)
    source = load_dataset(data, **options)
    if model.card.task == "promptable":  # any instance data: the objects are clicked, whatever their classes
        from omniseg.inference.promptable.prompt_predictor import PromptPredictor

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


def _run_data(run_dir: str | Path, data: str | Path | None, *, format: str | None, ignore_index: int | None) -> tuple[Path, dict]:
    """The dataset to evaluate on and its reader's options: the run's own data (``data`` None, or the same folder)
    with the run's format, ignore_index and split; other data with the run's split settings and the given options
    (an explicit ``format`` or ``ignore_index`` always wins)."""
    path = Path(run_dir) / "config.yaml"
    config = load_config(path) if path.is_file() else None
    own = Path(config.data.path) if config is not None and config.data.path else None
    if data is None:
        if own is None:
            raise ConfigError(f"{run_dir} does not name the data it trained on (config.yaml: data.path); pass --data DATASET")
        data = own
    options = {"format": format or "auto", "ignore_index": ignore_index}
    if config is not None:
        options.update(val_fraction=config.data.val_fraction, split_seed=config.data.split_seed)
        if own is not None and own.exists() and Path(data).exists() and own.resolve() == Path(data).resolve():
            options["format"] = format or config.data.format
            options["ignore_index"] = config.data.ignore_index if ignore_index is None else ignore_index
    return Path(data), options
