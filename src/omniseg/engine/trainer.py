"""The trainer factory and ``train``: config in, run directory out."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping

from omniseg.config import RunConfig, TrainConfig, config_yaml, flatten, load_values, to_dict
from omniseg.core.atomic import remove_stale_temporaries, write_text
from omniseg.core.device import resolve_device
from omniseg.core.info import DatasetInfo
from omniseg.data.formats import DataSource, load_dataset, require_instances
from omniseg.engine.callbacks import (
    INSTANCE_HISTORY_FIELDS, PANOPTIC_HISTORY_FIELDS, PROMPTABLE_HISTORY_FIELDS, RandomState, RunWriter, StepProgressBar,
    TrainingClock,
)
from omniseg.engine.checkpoints import PREVIOUS_CHECKPOINT, SafeCheckpointIO
from omniseg.engine.datamodule import SemanticDataModule
from omniseg.engine.instance import InstanceDataModule, InstanceTask
from omniseg.engine.module import SemanticTask
from omniseg.engine.panoptic import PanopticTask
from omniseg.engine.promptable import PromptableTask, prepare_for_finetuning
from omniseg.engine.promptable_clips import ClipDataModule, ClipPromptableTask, write_clip_report
from omniseg.models.promptable.sam2 import Sam2
from omniseg.engine.report import write_instance_report, write_promptable_report, write_report
from omniseg.engine.trackers import ExperimentTrackers, tracker_names
from omniseg.errors import ConfigError, DataError, NonFiniteLoss
from omniseg.losses import build_loss, median_frequency_weights
from omniseg.models import create_model, list_models
from omniseg.models.builder import MODELS
from omniseg.models.hub import ModelCard
from omniseg.models.semantic.base import check_dimensions
from omniseg.core.precision import BF16_MARGIN, bf16_speedup, choose_training_precision
from omniseg.plan import Candidate, Plan
from omniseg.plan.measure import step_seconds
from omniseg.viz.report import write_run_report

log = logging.getLogger(__name__)

TASKS = ("semantic", "instance", "panoptic", "promptable")
RUN_FILES = ("config.yaml", "plan.json", "plan.md", "model.json", "model.safetensors", "last.ckpt", PREVIOUS_CHECKPOINT,
             "metrics.json", "history.csv", "curves.png", "confusion.png", "clicks.png")
#: what a resumed run may change: how long it trains, and how it loads and reports
RESUMABLE_CHANGES = {"train.epochs", "train.max_steps", "train.time_budget", "train.early_stopping_patience",
                     "train.num_samples", "data.num_workers"}


@dataclass
class TrainResult:
    """What ``train`` returns on the main process."""

    run_dir: Path
    metrics: dict
    best_step: int
    global_step: int


def build_trainer(config: TrainConfig, callbacks: list[L.Callback], *, val_every_steps: int, max_steps: int | None,
                  progress: bool = True, epochs_per_step: float | None = None) -> L.Trainer:
    """A Lightning Trainer for ``config``, counted in optimiser steps: one endless epoch (the loaders'
    :class:`~omniseg.engine.datamodule.EndlessSampler`), a validation every ``val_every_steps``, stopped by
    the :class:`TrainingClock` in ``callbacks`` (``max_steps`` or the time budget). DDP when ``devices > 1``
    (gloo on CPU)."""
    if config.devices < 1:
        raise ConfigError(f"train.devices must be at least 1, got {config.devices}")
    if progress:
        callbacks = [*callbacks, StepProgressBar(max_steps, epochs_per_step)]
    return L.Trainer(
        accelerator=config.accelerator,
        devices=config.devices,
        strategy="ddp" if config.devices > 1 else "auto",
        precision=config.precision,
        max_epochs=-1,
        max_steps=max_steps or -1,
        check_val_every_n_epoch=None,
        val_check_interval=val_every_steps,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,  # the datamodule shards exactly (see EndlessSampler, ShardSampler)
        # "warn": ops without a deterministic kernel warn instead of stopping the run
        deterministic="warn" if config.deterministic else False,
        sync_batchnorm=config.sync_batchnorm and config.devices > 1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=progress,
        callbacks=callbacks,
        plugins=[SafeCheckpointIO()],
    )


def step_counts(config: TrainConfig, *, train_size: int, batch_size: int) -> tuple[int | None, int, float]:
    """``(max_steps, val_every_steps, epochs_per_step)`` of a run: training is counted in optimiser steps;
    ``train.epochs`` and ``train.val_every`` (epochs) are converted at ``ceil(train_size / global batch)``
    steps an epoch. ``max_steps`` is None when the time budget alone ends the run."""
    for key in ("max_steps", "epochs", "val_every", "val_every_steps", "time_budget"):
        value = getattr(config, key)
        if value is not None and value <= 0:
            raise ConfigError(f"train.{key} must be positive, got {value}")
    samples_per_step = batch_size * config.devices
    steps_per_epoch = -(-train_size // samples_per_step)
    max_steps = config.max_steps or (config.epochs * steps_per_epoch if config.epochs else None)
    if max_steps is None and config.time_budget is None:
        raise ConfigError("nothing ends this run: set train.max_steps, train.epochs or a time budget (--time-budget SECONDS)")
    val_every = config.val_every_steps or config.val_every * steps_per_epoch
    if max_steps is not None:
        val_every = min(val_every, max_steps)
    return max_steps, val_every, samples_per_step / train_size


def _model_kwargs(config: RunConfig, num_classes: int | None) -> dict:
    """The model builder's arguments: ``model.kwargs``, the encoder and its weights, and ``num_classes`` (None for
    models without classes: promptable ones)."""
    kwargs = {**({"num_classes": num_classes} if num_classes is not None else {}), **config.model.kwargs}
    if config.model.encoder is not None:
        kwargs["encoder"] = config.model.encoder
    if config.model.encoder_weights is not None:
        kwargs["encoder_weights"] = config.model.encoder_weights
    return kwargs


def _class_weights(config: RunConfig, source: DataSource) -> torch.Tensor | None:
    weights = config.loss.class_weights
    num_classes = source.info.num_classes
    if weights is None:
        return None
    if weights == "median_frequency":
        stats = source.class_pixel_stats("train")
        if stats is None:
            raise ConfigError("median_frequency class weights need masks for every training image")
        result = median_frequency_weights(*map(torch.from_numpy, stats))
        log.info("median-frequency class weights: %s", np.round(result.numpy(), 3).tolist())
        return result
    if isinstance(weights, str) or len(weights) != num_classes:
        raise ConfigError(
            f"loss.class_weights must be null, 'median_frequency' or {num_classes} numbers, got {weights!r}"
        )
    return torch.tensor(weights, dtype=torch.float32)


def _check_resume(run_dir: Path, config: RunConfig) -> None:
    """A resume needs a checkpoint and the run's own config (up to :data:`RESUMABLE_CHANGES`)."""
    if not any((run_dir / name).is_file() for name in ("last.ckpt", PREVIOUS_CHECKPOINT)):
        raise ConfigError(f"cannot resume: {run_dir} has no checkpoint (last.ckpt); the run stopped before its first "
                          "validation: train without --resume (--overwrite)")
    if not (run_dir / "config.yaml").is_file():
        return
    saved, asked = flatten(load_values(run_dir / "config.yaml")), flatten(to_dict(config))
    changed = sorted(k for k in asked if k in saved and saved[k] != asked[k] and k not in RESUMABLE_CHANGES)
    if changed:
        what = ", ".join(f"{k}: {saved[k]!r} -> {asked[k]!r}" for k in changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        raise ConfigError(f"cannot resume {run_dir} with another config ({what}); resume with the run's own options "
                          f"(--config {run_dir / 'config.yaml'}), or train into another --out")


def _prepare_run_dir(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    remove_stale_temporaries(run_dir)  # what a killed run was writing: never a finished file
    if resume:
        return
    existing = [name for name in RUN_FILES if (run_dir / name).exists()]
    if existing and not overwrite:
        raise ConfigError(f"{run_dir} already holds a run ({existing[0]}); pass --resume, --overwrite or another --out")
    for name in existing:
        (run_dir / name).unlink()
    for sample in (run_dir / "samples").glob("*.png"):
        sample.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)


def train(config: RunConfig, *, resume: bool = False, overwrite: bool = False, progress: bool = True,
          plan: Plan | None = None) -> TrainResult | None:
    """Train a model as ``config`` says and write its run directory (``config.train.out``).

    ``config.task`` is "semantic" (class masks, mIoU), "instance" (instance masks, COCO mask AP),
    "panoptic" (class masks and instances, panoptic quality) or "promptable" (Segment Anything from simulated
    prompts on any instance data, measured in clicks; ``config.prompt``).
    ``plan``, when the config came from one (:func:`omniseg.plan.make_plan`), is saved beside it as
    ``plan.json`` and ``plan.md``. Returns the final validation report on the main process, ``None`` on the
    other DDP processes.
    """
    if config.task not in TASKS:
        raise ConfigError(f"task {config.task!r} is unknown; use one of {', '.join(TASKS)}")
    if config.data.path is None:
        raise ConfigError("no dataset: pass --data PATH (or set data.path in the config)")
    if not 0 < config.data.val_fraction < 1:
        raise ConfigError(f"data.val_fraction {config.data.val_fraction} is not between 0 and 1 (the share of data "
                          "without splits held out for validation)")
    L.seed_everything(config.train.seed, workers=True, verbose=False)
    source = load_dataset(config.data.path, format=config.data.format, ignore_index=config.data.ignore_index,
                          val_fraction=config.data.val_fraction, split_seed=config.data.split_seed)
    if config.task == "promptable":
        return _train_promptable(config, source, resume=resume, overwrite=overwrite, progress=progress, plan=plan)
    if config.task in ("instance", "panoptic"):
        return _train_objects(config, source, resume=resume, overwrite=overwrite, progress=progress, plan=plan)
    info = source.info
    for split in ("train", "val"):
        if split in source.splits() and not source.labelled(split):
            raise DataError(f"split {split!r} of {config.data.path} has images without masks; training needs a mask for each")
    kwargs = _model_kwargs(config, info.num_classes)
    if source.volumetric:  # volumes have as many channels as the scan has modalities
        kwargs.setdefault("in_channels", source.num_channels)
    elif config.data.channels not in (None, 3):  # grey (or other) images: the model's first layer takes them
        kwargs.setdefault("in_channels", config.data.channels)
    channels = kwargs.get("in_channels", 3)
    if not source.volumetric:  # the loaders convert the images to the model's channels
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, channels=channels))
    if not source.volumetric and (len(config.data.mean) != channels or len(config.data.std) != channels):
        raise ConfigError(f"data.mean and data.std need one value per input channel ({channels}), got {list(config.data.mean)} "
                          f"and {list(config.data.std)}; set them (--set data.mean=[...]) or let the plan measure them")
    model = create_model(config.model.name, **kwargs)
    check_dimensions(model, volumetric_data=source.volumetric, data=str(config.data.path), name=f"model {config.model.name!r}")
    loss = build_loss(
        config.loss.name,
        class_weights=_class_weights(config, source),
        ignore_index=info.ignore_index,
        label_smoothing=config.loss.label_smoothing,
        focal_gamma=config.loss.focal_gamma,
        tversky_alpha=config.loss.tversky_alpha,
        tversky_beta=config.loss.tversky_beta,
        tversky_gamma=config.loss.tversky_gamma,
        ohem_threshold=config.loss.ohem_threshold,
        ohem_min_kept=config.loss.ohem_min_kept,
    )
    card = ModelCard(
        architecture=config.model.name,
        kwargs=kwargs,
        info=info,
        # the training size is the sliding-window tile by default
        preprocessing={"normalise": "z-score per volume and channel", "patch_size": list(config.data.patch_size)} if source.volumetric
        else {"mean": list(config.data.mean), "std": list(config.data.std), "channels": channels, "img_size": config.data.img_size},
        task=config.task,
    )
    task = SemanticTask(
        model, loss, num_classes=info.num_classes, ignore_index=info.ignore_index, optim=config.optim,
        channels_last=config.train.channels_last,
        aux_weight=config.loss.aux_weight,
    )
    writer = RunWriter(Path(config.train.out), card)
    shape = tuple(config.data.patch_size) if source.volumetric else (config.data.img_size,) * 2
    config, precision = _training_precision(config, plan, Candidate(config.model.name, _without(kwargs, "num_classes", "in_channels")),
                                            channels=channels, num_classes=info.num_classes, shape=shape)
    return _fit_and_report(config, source, task, SemanticDataModule(source, config.data, seed=config.train.seed), writer,
                           write_report, resume=resume, overwrite=overwrite, progress=progress, plan=plan, precision=precision)


def _require_splits(source: DataSource, path) -> None:
    """Object training (instance, panoptic, promptable) needs a train and a val split."""
    for split in ("train", "val"):
        if split not in source.splits():
            raise DataError(f"{path} has no {split!r} split")


def _train_objects(config: RunConfig, source: DataSource, *, resume: bool, overwrite: bool, progress: bool,
                   plan: Plan | None) -> TrainResult | None:
    """Instance or panoptic training: a torchvision-style detector (with a semantic head for panoptic) on a
    dataset with instances, scored by COCO mask AP (instance) or panoptic quality (panoptic)."""
    info, task_name = source.info, config.task
    require_instances(source, config.data.path, task_name)
    if config.model.name not in list_models(task_name):
        article = "an" if task_name[0] in "aeiou" else "a"
        raise ConfigError(f"--task {task_name} needs {article} {task_name} model ({', '.join(list_models(task_name))}), not {config.model.name!r}")
    _require_splits(source, config.data.path)
    for split in ("train", "val"):
        if task_name == "panoptic" and not source.labelled(split):
            raise DataError(f"split {split!r} of {config.data.path} has images without class masks; panoptic training needs one per image")
    kwargs = _model_kwargs(config, info.num_classes)
    kwargs.setdefault("min_size", config.data.img_size)  # the detector's own resize: the scale training sees
    kwargs.setdefault("max_size", round(config.data.img_size * 1333 / 800))
    if task_name == "panoptic":  # the semantic head skips the dataset's ignored pixels
        kwargs.setdefault("ignore_index", info.ignore_index)
    model = create_model(config.model.name, **kwargs)
    card = ModelCard(architecture=config.model.name, kwargs=kwargs, info=info,
                     preprocessing={"scale": "0..1; the model normalises and resizes itself"}, task=task_name)
    panoptic = task_name == "panoptic"
    if panoptic:
        task = PanopticTask(model, info=info, optim=config.optim)
        writer = RunWriter(Path(config.train.out), card, monitor="val_pq", fields=PANOPTIC_HISTORY_FIELDS)
    else:
        task = InstanceTask(model, class_names=info.class_names, optim=config.optim)
        writer = RunWriter(Path(config.train.out), card, monitor="val_map", fields=INSTANCE_HISTORY_FIELDS)
    datamodule = InstanceDataModule(source, config.data, seed=config.train.seed, semantic=panoptic)
    config, precision = _training_precision(config, plan, Candidate(config.model.name, _without(kwargs, "num_classes")), channels=3,
                                            num_classes=info.num_classes, shape=(config.data.img_size,) * 2, detector=True)
    return _fit_and_report(config, source, task, datamodule, writer, write_instance_report, resume=resume, overwrite=overwrite,
                           progress=progress, plan=plan, precision=precision)


def _train_promptable(config: RunConfig, source: DataSource, *, resume: bool, overwrite: bool, progress: bool,
                      plan: Plan | None) -> TrainResult | None:
    """Promptable training: a Segment Anything model (from scratch, or from ``model.kwargs.checkpoint``) on a
    dataset with instances, prompted as :mod:`omniseg.engine.promptable` simulates, scored in clicks."""
    require_instances(source, config.data.path, "promptable")
    promptable = list_models("promptable")
    if config.model.name not in promptable:
        raise ConfigError(f"--task promptable trains {', '.join(promptable)}, not {config.model.name!r}")
    clips = config.prompt.clip_frames
    if clips:
        if clips < 2:
            raise ConfigError(f"prompt.clip_frames {clips}: a clip needs at least 2 frames (0 trains on images)")
        if not config.model.name.startswith("sam2"):
            raise ConfigError(f"prompt.clip_frames trains SAM 2's memory on clips; {config.model.name} has no memory: "
                              "choose a sam2 model or leave prompt.clip_frames at 0")
        if not hasattr(source, "clips"):
            raise ConfigError(f"prompt.clip_frames needs a video dataset (DAVIS layout: JPEGImages/<video>/, "
                              f"Annotations/<video>/); {config.data.path} is {source.description}")
    _require_splits(source, config.data.path)
    kwargs = _model_kwargs(config, None)
    if "img_size" in inspect.signature(MODELS.get(config.model.name)).parameters:  # the model sees the training crops at their size
        kwargs.setdefault("img_size", config.data.img_size)
    model = create_model(config.model.name, **kwargs).train()
    prepare_for_finetuning(model, config.prompt)
    if config.data.img_size != model.img_size:  # a model of fixed size (the official ones: 1024) is trained on its frame
        log.info("training crops of %d px: the input frame of %s", model.img_size, config.model.name)
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, img_size=model.img_size))
    # the classes are those of the objects; a promptable model predicts "object" for whatever it is prompted with
    info = DatasetInfo(["background", "object"], ignore_index=source.info.ignore_index)
    card = ModelCard(architecture=config.model.name, kwargs=kwargs, info=info, task="promptable",
                     preprocessing={"resize": f"squashed to {model.img_size} x {model.img_size} px" if isinstance(model, Sam2)
                                    else f"longest side to {model.img_size} px, zero-padded to a square"})
    writer = RunWriter(Path(config.train.out), card, monitor="val_miou_1", fields=PROMPTABLE_HISTORY_FIELDS)
    if clips:
        task = ClipPromptableTask(model, prompt=config.prompt, optim=config.optim)
        datamodule = ClipDataModule(source, config.data, length=clips, seed=config.train.seed)
        report = functools.partial(_report_clips, datamodule.val_set)
    else:
        task = PromptableTask(model, prompt=config.prompt, optim=config.optim)
        datamodule, report = InstanceDataModule(source, config.data, seed=config.train.seed), write_promptable_report
    config, precision = _training_precision(config, plan, None)
    return _fit_and_report(config, source, task, datamodule, writer, report, resume=resume, overwrite=overwrite,
                           progress=progress, plan=plan, precision=precision)


def _without(kwargs: dict, *names: str) -> dict:
    return {k: v for k, v in kwargs.items() if k not in names}


def _training_precision(config: RunConfig, plan: Plan | None, candidate: Candidate | None, *, channels: int = 3,
                        num_classes: int = 2, shape: tuple[int, ...] = (), detector: bool = False) -> tuple[RunConfig, dict]:
    """``config`` with ``train.precision`` as Lightning takes it, and the facts of the choice for metrics.json.

    ``"auto"`` measures a training step of ``candidate`` (the run's model, at its crop and batch) in float32 and
    bfloat16 (:func:`~omniseg.core.precision.choose_training_precision`); promptable models (``candidate`` None), whose
    step needs prompts, are judged by a matrix product in each precision. A plan that chose already is followed."""
    asked = config.train.precision
    if plan is not None and plan.values.get("train.precision") == asked and asked != "auto":  # the plan measured it
        facts = {"chosen": asked, "reason": plan.reasons.get("train.precision", "")}
        if "precision_step_seconds" in plan.measured:
            facts["step_seconds"] = plan.measured["precision_step_seconds"]
        return config, facts
    accelerator = config.train.accelerator
    device = resolve_device({"auto": None, "gpu": "cuda", "cuda": "cuda"}.get(accelerator, "cpu")).type
    if candidate is None:
        speedup = bf16_speedup(torch.device(device))

        def measure(precision: str) -> float:  # relative cost: a matrix product's
            return 1.0 if precision == "32-true" else (1 / speedup if speedup else math.inf)
    else:
        def measure(precision: str) -> float:
            return step_seconds(candidate, channels=channels, num_classes=num_classes, shape=shape, batch=config.data.batch_size,
                                device=device, detector=detector, precision=precision)
    chosen, facts = choose_training_precision(asked, device, measure)
    if candidate is None and "step_seconds" in facts:
        facts["reason"] = f"a 1024 x 1024 matrix product ran {speedup:.2f}x as fast in bfloat16 (bfloat16 from {BF16_MARGIN}x)"
        del facts["step_seconds"]
    log.info("training precision %s: %s", chosen, facts["reason"])
    return dataclasses.replace(config, train=dataclasses.replace(config.train, precision=chosen)), facts


def _report_clips(clips, run_dir: Path, _frames, *, config: RunConfig, extra: dict) -> dict:
    """The clip run's report reads the val clips (the frames of the val split, as clips)."""
    return write_clip_report(run_dir, clips, config=config, extra=extra)


def _keeps_determinism(function):
    """Lightning's ``deterministic`` switches torch's process-wide flag when a Trainer is built; the caller of
    ``function`` gets theirs back afterwards."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        enabled, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
        try:
            return function(*args, **kwargs)
        finally:
            torch.use_deterministic_algorithms(enabled, warn_only=warn_only)

    return wrapper


@_keeps_determinism
def _fit_and_report(config: RunConfig, source: DataSource, task: L.LightningModule, datamodule: L.LightningDataModule,
                    writer: RunWriter, report, *, resume: bool, overwrite: bool, progress: bool, plan: Plan | None,
                    precision: dict) -> TrainResult | None:
    """Fit, then (on the main process) evaluate the best weights with ``report`` and write metrics.json (with the
    ``precision`` facts)."""
    run_dir = Path(config.train.out)
    max_steps, val_every, epochs_per_step = step_counts(config.train, train_size=len(datamodule.train_set),
                                                        batch_size=config.data.batch_size)
    clock = TrainingClock(max_steps=max_steps, time_budget=config.train.time_budget,
                          fetch_seconds=getattr(datamodule, "fetch_seconds", None))
    writer.epochs_per_step, writer.clock = epochs_per_step, clock
    callbacks: list[L.Callback] = [clock, writer, RandomState()]
    if config.train.early_stopping_patience is not None:
        callbacks.append(EarlyStopping(writer.monitor, mode="max", patience=config.train.early_stopping_patience))
    trainer = build_trainer(config.train, callbacks, val_every_steps=val_every, max_steps=max_steps, progress=progress,
                            epochs_per_step=epochs_per_step)
    if resume:
        _check_resume(run_dir, config)
    if trainer.is_global_zero:
        _prepare_run_dir(run_dir, resume=resume, overwrite=overwrite)
        write_text(run_dir / "config.yaml", config_yaml(config))
        if plan is not None:
            plan.save(run_dir)
        writer.trackers = ExperimentTrackers(tracker_names(config.train.logger), run_dir, resume=resume,
                                             hyperparameters=flatten(to_dict(config)))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*Trying to infer the `batch_size`.*")
        try:
            trainer.fit(task, datamodule=datamodule, ckpt_path=str(run_dir / "last.ckpt") if resume else None,
                        weights_only=True)
        except NonFiniteLoss as exc:
            kept = (f"the last good checkpoint is kept: {run_dir / 'last.ckpt'} (step {writer.saved_step}), the best weights "
                    f"in {run_dir / 'model.safetensors'} (step {writer.best_step})") if writer.saved_step is not None \
                else "no checkpoint had been written yet"
            raise NonFiniteLoss(f"{exc}; {kept}") from None
        finally:
            if writer.trackers is not None:
                writer.trackers.finish("success" if trainer.state.status == "finished" else "failed")
    if not trainer.is_global_zero:
        return None
    facts = {"best_step": writer.best_step, "best_epoch": writer.best_epoch, "global_step": trainer.global_step,
             "epochs": round(trainer.global_step * epochs_per_step, 2), **clock.summary(), "precision": precision}
    metrics = report(run_dir, source.dataset("val"), config=config, extra=facts)
    write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2))
    write_run_report(run_dir)
    return TrainResult(run_dir, metrics, writer.best_step, trainer.global_step)
