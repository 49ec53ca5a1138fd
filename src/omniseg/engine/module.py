"""The Lightning module of semantic segmentation: loss, optimiser, schedule, exact val metrics."""

from __future__ import annotations

import math

import lightning as L
import torch
import torch.distributed as dist
from torch import nn

from omniseg.config import OptimConfig
from omniseg.core.labels import class_ids
from omniseg.core.precision import float32
from omniseg.errors import NonFiniteLoss
from omniseg.metrics import ConfusionMatrix, metrics_from_confusion
from omniseg.models.semantic.base import is_volumetric


LOG_EVERY = 10  # steps between the training losses shown on the progress bar


def schedule_factor(step: int, total_steps: int | None, config: OptimConfig, progress_floor: float = 0.0) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up, then poly, cosine or constant.

    ``progress_floor`` (0..1) lets a time budget advance the schedule faster than the step count; with
    ``total_steps`` None (a run stopped by its budget alone) it is the whole progress.
    """
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(total_steps - config.warmup_steps, 1) if total_steps else 0.0
    progress = min(max(progress, progress_floor), 1.0)
    if config.schedule == "poly":
        return (1 - progress) ** config.poly_power
    if config.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    return 1.0


class OptimisedTask(L.LightningModule):
    """What every training task shares: AdamW (fused kernel, no decay on norms and biases), the
    warm-up + poly/cosine/constant schedule that a time budget advances (through the run's
    :class:`~omniseg.engine.callbacks.TrainingClock`, set as ``clock``), the mean training loss between
    validations, and sums across processes. ``last_validation`` holds the latest metrics."""

    def __init__(self, model: nn.Module, *, optim: OptimConfig) -> None:
        super().__init__()
        self.model, self.optim_config = model, optim
        self._train_loss = torch.zeros(2, dtype=torch.float64)  # (sum, steps)
        self.clock = None
        self.last_validation: dict = {}

    def model_to_save(self) -> nn.Module:
        """The model the run saves as ``model.safetensors`` (tasks that train adapters fold them in here)."""
        return self.model

    def check_loss(self, loss: torch.Tensor, batch_size: int, parts: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Stop on a NaN or infinite loss; otherwise count it, and show it (with its ``parts``) every
        :data:`LOG_EVERY` steps: a logged value costs Lightning about a millisecond."""
        value = loss.item()
        if not math.isfinite(value):
            raise NonFiniteLoss(
                f"the loss became {value} at step {self.global_step}; "
                "lower the learning rate (--set optim.lr=...) or check the labels and class weights"
            )
        self._train_loss += torch.tensor([value, 1.0], dtype=torch.float64)
        if self.global_step % LOG_EVERY == 0:
            for name, part in (parts or {}).items():
                self.log(name, part.detach(), batch_size=batch_size)
            self.log("train_loss", value, prog_bar=True, batch_size=batch_size)
        return loss

    def mean_train_loss(self) -> float:
        """The mean training loss since the last call, over all processes."""
        train_loss = self._all_reduce(self._train_loss)
        self._train_loss.zero_()
        return (train_loss[0] / train_loss[1]).item() if train_loss[1] else math.nan

    def _distributed(self) -> bool:
        return dist.is_available() and dist.is_initialized() and self.trainer.world_size > 1

    def _gathered(self, items: list) -> list:
        """This process's ``items`` followed by every other process's (as they are on one process)."""
        if not self._distributed():
            return items
        parts = [None] * self.trainer.world_size
        dist.all_gather_object(parts, items)
        return [item for part in parts for item in part]

    def _all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.clone()
        if self._distributed():
            dist.all_reduce(tensor)
        return tensor

    def configure_optimizers(self):
        config = self.optim_config
        decay, no_decay = [], []
        for name, param in self.model.named_parameters():
            if param.requires_grad:
                (no_decay if param.ndim <= 1 else decay).append(param)  # no decay on norms and biases
        # the fused kernel is several times faster than the per-tensor loop (5x on a 2-core CPU for FCN-8s)
        fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in decay + no_decay)
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=config.lr, fused=fused or None,
        )
        total = self.trainer.max_steps if self.trainer.max_steps > 0 else None

        def factor(step: int) -> float:
            return schedule_factor(step, total, config, self.clock.progress() if self.clock is not None else 0.0)

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class SemanticTask(OptimisedTask):
    """Trains a semantic model; validation accumulates one confusion matrix, summed across processes.

    After each validation, ``last_validation`` holds the metrics (identical on every process).
    """

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module,
        *,
        num_classes: int,
        ignore_index: int,
        optim: OptimConfig,
        channels_last: bool = True,
        aux_weight: float = 0.4,
    ) -> None:
        super().__init__(model, optim=optim)
        self.loss = loss
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.aux_weight = aux_weight
        self.confusion = ConfusionMatrix(num_classes, ignore_index=ignore_index)
        self._val_loss = torch.zeros(2, dtype=torch.float64)  # (sum, batches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def on_fit_start(self) -> None:
        if is_volumetric(self.model):  # channels-last is a 2D layout
            self.memory_format = torch.contiguous_format
        self.model.to(memory_format=self.memory_format)

    def _layout(self, images: torch.Tensor) -> torch.Tensor:
        return images.contiguous(memory_format=self.memory_format)

    def _loss(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The loss in float32, also when the model runs under mixed precision."""
        with float32(logits.device.type):
            return self.loss(logits.float(), mask)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        images = self._layout(batch["image"])
        if getattr(self.model, "has_aux", False):  # deep supervision through the auxiliary heads
            logits, extra = self.model(images, aux=True)
            loss = self._loss(logits, batch["mask"]) + self.aux_weight * sum(self._loss(e, batch["mask"]) for e in extra)
        else:
            loss = self._loss(self.model(images), batch["mask"])
        return self.check_loss(loss, len(batch["image"]))

    def on_validation_epoch_start(self) -> None:
        self.confusion.reset()
        self._val_loss.zero_()
        if self._distributed():
            # BatchNorm running statistics drift apart per process; validate (and save) one model
            for buffer in self.model.buffers():
                dist.broadcast(buffer, src=0)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        logits = self.model(self._layout(batch["image"]))
        self._val_loss += torch.tensor([self._loss(logits, batch["mask"]).item(), 1.0], dtype=torch.float64)
        self.confusion.update(class_ids(logits, 1), batch["mask"])

    def on_validation_epoch_end(self) -> None:
        matrix = self._all_reduce(self.confusion.matrix)
        val_loss = self._all_reduce(self._val_loss)
        train_loss = self.mean_train_loss()
        metrics = metrics_from_confusion(matrix, ignore_index=self.ignore_index)
        summary = {
            "val_loss": (val_loss[0] / val_loss[1]).item() if val_loss[1] else math.nan,
            "val_miou": metrics["miou"],
            "val_pixel_accuracy": metrics["pixel_accuracy"],
            "val_mean_accuracy": metrics["mean_accuracy"],
            "val_mean_dice": metrics["mean_dice"],
            "val_fwiou": metrics["fwiou"],
        }
        self.last_validation = {
            **summary,
            "train_loss": train_loss,
            "matrix": matrix.clone(),
        }
        if not self.trainer.sanity_checking:
            for key, value in summary.items():
                self.log(key, 0.0 if math.isnan(value) else value, prog_bar=key == "val_miou", sync_dist=False)
