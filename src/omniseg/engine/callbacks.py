"""Callbacks that keep the run directory current during training."""

from __future__ import annotations

import csv
import io
import math
import random
import statistics
import time
from collections import deque
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar
import torch

from omniseg.core.atomic import write_text
from omniseg.models.hub import ModelCard, save_model

HISTORY_FIELDS = [
    "epoch", "step", "train_loss", "val_loss", "val_miou", "val_pixel_accuracy",
    "val_mean_accuracy", "val_mean_dice", "val_fwiou", "lr", "seconds",
]
INSTANCE_HISTORY_FIELDS = ["epoch", "step", "train_loss", "val_map", "val_map50", "val_map75", "val_box_map", "lr", "seconds"]
PROMPTABLE_HISTORY_FIELDS = ["epoch", "step", "train_loss", "val_miou_1", "val_miou_3", "val_miou_5", "val_noc85", "val_noc90",
                             "val_nof90", "lr", "seconds"]
PANOPTIC_HISTORY_FIELDS = ["epoch", "step", "train_loss", "val_pq", "val_pq_things", "val_pq_stuff", "val_sq", "val_rq", "val_map",
                           "val_map50", "lr", "seconds"]


class RunWriter(L.Callback):
    """After each validation: add a row to ``history.csv``, save ``model.safetensors`` when the
    ``monitor`` metric improves (val mIoU, mask AP for instance models, PQ for panoptic ones), and save ``last.ckpt``
    (training state for ``--resume``). Only rank 0 writes files, each atomically; rows a killed run wrote after
    its last checkpoint are replaced when the resumed run validates those steps again."""

    def __init__(self, run_dir: str | Path, card: ModelCard, *, monitor: str = "val_miou", fields: list[str] = HISTORY_FIELDS) -> None:
        self.run_dir, self.card = Path(run_dir), card
        self.monitor, self.fields = monitor, fields
        self.best_score = -math.inf
        self.best_step, self.best_epoch = -1, -1.0
        self.epochs_per_step = 0.0  # for the reporting unit: epochs are only counted, training runs in steps
        self.clock: TrainingClock | None = None  # the run's clock: the seconds column (resumes included)
        self.saved_step: int | None = None  # the step of the last checkpoint written
        self.trackers = None  # ExperimentTrackers: each history row also goes to TensorBoard / MLflow / W&B

    def state_dict(self) -> dict:
        return {"best_score": self.best_score, "best_step": self.best_step, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.best_score, self.best_epoch = state["best_score"], state["best_epoch"]
        self.best_step = state["best_step"]

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not pl_module.last_validation:
            return
        values = pl_module.last_validation
        score = values[self.monitor]
        improved = not math.isnan(score) and score > self.best_score
        epoch = round(trainer.global_step * self.epochs_per_step, 2)
        if improved:
            self.best_score, self.best_step, self.best_epoch = score, trainer.global_step, epoch
        if trainer.is_global_zero:
            row = {k: values.get(k, "") for k in self.fields}
            row.update(epoch=epoch, step=trainer.global_step, seconds=round(self.clock.elapsed(), 2) if self.clock else "",
                       lr=trainer.optimizers[0].param_groups[0]["lr"])
            self._write_history(row)
            if self.trackers is not None:
                self.trackers.log(row)
            if improved:
                save_model(pl_module.model_to_save(), self.run_dir, self.card)
        trainer.save_checkpoint(self.run_dir / "last.ckpt")
        self.saved_step = trainer.global_step

    def _write_history(self, row: dict) -> None:
        path = self.run_dir / "history.csv"
        rows = []
        if path.is_file():
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if r.get("step", "").isdigit() and int(r["step"]) < row["step"]]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=self.fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows([*rows, row])
        write_text(path, text.getvalue())

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # a time budget can stop training before any validation: keep the weights we have
        if trainer.is_global_zero and not (self.run_dir / "model.safetensors").exists():
            save_model(pl_module.model_to_save(), self.run_dir, self.card)


class RandomState(L.Callback):
    """Keeps torch's and Python's random generators in the checkpoint and restores them just before the first
    step after a resume, so dropout, detector sampling and the rest draw what the uninterrupted run drew (the
    loaders' augmentations follow the sample stream instead: see ``EndlessSampler``)."""

    def __init__(self) -> None:
        self._restore: dict | None = None

    def state_dict(self) -> dict:
        state = {"torch": torch.get_rng_state(), "python": random.getstate()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict) -> None:
        self._restore = state

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if self._restore is None:
            return
        torch.set_rng_state(self._restore["torch"])
        random.setstate(self._restore["python"])
        if "cuda" in self._restore and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(self._restore["cuda"])
        self._restore = None


class TrainingClock(L.Callback):
    """Stops training at ``max_steps`` optimiser steps or at the ``time_budget`` (seconds), whichever comes
    first, and accounts for where the time went.

    A step is not started when it (at the median duration of the recent ones) and a final validation (as long
    as the last one) would end past the budget, so a run keeps its budget within a step's length instead of
    overshooting by one. Stopping sets ``trainer.should_stop``, on which Lightning runs a final validation:
    the last steps always count. ``summary()`` gives the steps, seconds, and the shares of the time spent
    waiting for the loader and validating (measured, for the run report). ``fetch_seconds`` (the datamodule's, where
    it counts the wait for batches itself) splits the time between steps into the wait for data
    (``loader_wait_share``) and the training loop's own work (``loop_share``); without it the whole time between
    steps counts as the wait.
    """

    def __init__(self, *, max_steps: int | None, time_budget: float | None, fetch_seconds=None) -> None:
        self.max_steps, self.time_budget = max_steps, time_budget
        self.fetch_seconds = fetch_seconds
        self._recent: deque[float] = deque(maxlen=20)
        self.step_seconds = self.wait_seconds = self.validation_seconds = self.last_validation = 0.0
        self.steps = 0
        self._offset = 0.0  # seconds of training before a resume
        self._start = self._batch_start = time.monotonic()
        self._batch_end: float | None = None
        self._validation_start = 0.0

    def elapsed(self) -> float:
        return self._offset + time.monotonic() - self._start

    def state_dict(self) -> dict:
        return {"seconds": self.elapsed(), "last_validation": self.last_validation}

    def load_state_dict(self, state: dict) -> None:
        self._offset, self.last_validation = state["seconds"], state["last_validation"]

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.monotonic()
        pl_module.clock = self  # the learning-rate schedule follows the budget's progress

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        self._batch_start = time.monotonic()
        if self._batch_end is not None:  # the loader's fetch and the loop's own work since the last step
            self.wait_seconds += self._batch_start - self._batch_end

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int) -> None:
        self._batch_end = time.monotonic()
        duration = self._batch_end - self._batch_start
        self.step_seconds += duration
        self.steps += 1
        self._recent.append(duration)
        if self.max_steps is not None and trainer.global_step >= self.max_steps:
            trainer.should_stop = True
        elif self.time_budget is not None:
            next_step = statistics.median(self._recent)
            if self.elapsed() + next_step + max(self.last_validation, next_step) > self.time_budget:
                trainer.should_stop = True

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._validation_start = time.monotonic()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.last_validation = time.monotonic() - self._validation_start
        self.validation_seconds += self.last_validation
        self._batch_end = None  # the next wait is not the loader's

    def progress(self) -> float:
        """The share of the time budget spent (0 without a budget)."""
        return self.elapsed() / self.time_budget if self.time_budget else 0.0

    def summary(self) -> dict:
        total = max(self.step_seconds + self.wait_seconds + self.validation_seconds, 1e-9)
        fetch = self.fetch_seconds() if self.fetch_seconds is not None else None
        wait = self.wait_seconds if fetch is None else min(fetch, self.wait_seconds)
        return {"train_seconds": round(self.elapsed(), 1), "step_seconds": round(self.step_seconds / max(self.steps, 1), 4),
                "loader_wait_share": round(wait / total, 4), "loop_share": round((self.wait_seconds - wait) / total, 4),
                "validation_share": round(self.validation_seconds / total, 4)}


class StepProgressBar(RichProgressBar):
    """Rich's progress bar counted as omniseg counts training: optimiser steps out of ``max_steps`` (open-ended under
    a time budget), with the epochs they make where ``epochs_per_step`` is known, instead of Lightning's "Epoch 0/-2"
    of one endless epoch."""

    def __init__(self, max_steps: int | None, epochs_per_step: float | None = None) -> None:
        super().__init__(leave=True)
        self.max_steps, self.epochs_per_step = max_steps, epochs_per_step

    @property
    def total_train_batches(self) -> int | float:
        return self.max_steps if self.max_steps else float("inf")

    def _get_train_description(self, current_epoch: int) -> str:
        if self.max_steps and self.epochs_per_step:
            return f"training: {self.max_steps:,} steps ({self.max_steps * self.epochs_per_step:.1f} epochs)"
        return f"training: {self.max_steps:,} steps" if self.max_steps else "training (time budget)"

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if self.train_progress_bar_id is not None and self.progress is not None:
            self.progress.update(self.train_progress_bar_id, completed=trainer.global_step)  # steps, across a resume
