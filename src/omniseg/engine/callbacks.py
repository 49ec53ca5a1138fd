"""Callbacks that keep the run directory current during training."""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import lightning as L

from omniseg.models.hub import ModelCard, save_model

HISTORY_FIELDS = [
    "epoch", "step", "train_loss", "val_loss", "val_miou", "val_pixel_accuracy",
    "val_mean_accuracy", "val_mean_dice", "val_fwiou", "lr", "seconds",
]
INSTANCE_HISTORY_FIELDS = ["epoch", "step", "train_loss", "val_map", "val_map50", "val_map75", "val_box_map", "lr", "seconds"]
PANOPTIC_HISTORY_FIELDS = ["epoch", "step", "train_loss", "val_pq", "val_pq_things", "val_pq_stuff", "val_sq", "val_rq", "val_map",
                           "val_map50", "lr", "seconds"]


class RunWriter(L.Callback):
    """After each validation: append a row to ``history.csv``, save ``model.safetensors`` when the
    ``monitor`` metric improves (val mIoU, mask AP for instance models, PQ for panoptic ones), and save ``last.ckpt``
    (training state for ``--resume``). Only rank 0 writes files."""

    def __init__(self, run_dir: str | Path, card: ModelCard, *, monitor: str = "val_miou", fields: list[str] = HISTORY_FIELDS) -> None:
        self.run_dir, self.card = Path(run_dir), card
        self.monitor, self.fields = monitor, fields
        self.best_score = -math.inf
        self.best_epoch = -1
        self._start = time.monotonic()
        self._offset = 0.0  # seconds spent before a resume

    def state_dict(self) -> dict:
        return {"best_score": self.best_score, "best_epoch": self.best_epoch, "seconds": self._seconds()}

    def load_state_dict(self, state: dict) -> None:
        self.best_score, self.best_epoch = state.get("best_score", state.get("best_miou")), state["best_epoch"]
        self._offset = state.get("seconds", 0.0)

    def _seconds(self) -> float:
        return self._offset + time.monotonic() - self._start

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.monotonic()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not pl_module.last_validation:
            return
        values = pl_module.last_validation
        score = values[self.monitor]
        improved = not math.isnan(score) and score > self.best_score
        if improved:
            self.best_score, self.best_epoch = score, trainer.current_epoch
        if trainer.is_global_zero:
            row = {k: values.get(k, "") for k in self.fields}
            row.update(epoch=trainer.current_epoch, step=trainer.global_step, seconds=round(self._seconds(), 2),
                       lr=trainer.optimizers[0].param_groups[0]["lr"])
            path = self.run_dir / "history.csv"
            new = not path.exists()
            with open(path, "a", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self.fields)
                if new:
                    writer.writeheader()
                writer.writerow(row)
            if improved:
                save_model(pl_module.model, self.run_dir, self.card)
        trainer.save_checkpoint(self.run_dir / "last.ckpt")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # a time budget can stop training before any validation: keep the weights we have
        if trainer.is_global_zero and not (self.run_dir / "model.safetensors").exists():
            save_model(pl_module.model, self.run_dir, self.card)
