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


class RunWriter(L.Callback):
    """After each validation: append a row to ``history.csv``, save ``model.safetensors`` when val mIoU
    improves, and save ``last.ckpt`` (training state for ``--resume``). Only rank 0 writes files."""

    def __init__(self, run_dir: str | Path, card: ModelCard) -> None:
        self.run_dir, self.card = Path(run_dir), card
        self.best_miou = -math.inf
        self.best_epoch = -1
        self._start = time.monotonic()
        self._offset = 0.0  # seconds spent before a resume

    def state_dict(self) -> dict:
        return {"best_miou": self.best_miou, "best_epoch": self.best_epoch, "seconds": self._seconds()}

    def load_state_dict(self, state: dict) -> None:
        self.best_miou, self.best_epoch = state["best_miou"], state["best_epoch"]
        self._offset = state.get("seconds", 0.0)

    def _seconds(self) -> float:
        return self._offset + time.monotonic() - self._start

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.monotonic()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not pl_module.last_validation:
            return
        values = pl_module.last_validation
        miou = values["val_miou"]
        improved = not math.isnan(miou) and miou > self.best_miou
        if improved:
            self.best_miou, self.best_epoch = miou, trainer.current_epoch
        if trainer.is_global_zero:
            row = {k: values.get(k, "") for k in HISTORY_FIELDS}
            row.update(epoch=trainer.current_epoch, step=trainer.global_step, seconds=round(self._seconds(), 2),
                       lr=trainer.optimizers[0].param_groups[0]["lr"])
            path = self.run_dir / "history.csv"
            new = not path.exists()
            with open(path, "a", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=HISTORY_FIELDS)
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
