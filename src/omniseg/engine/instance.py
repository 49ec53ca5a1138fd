"""Instance segmentation training: the Lightning module (Mask R-CNN losses, COCO AP validation) and its loaders."""

from __future__ import annotations

import math

import lightning as L
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from omniseg.config import DataConfig, OptimConfig
from omniseg.data.cache import CachedDataset
from omniseg.data.formats import DataSource
from omniseg.data.transforms import InstanceTransform, TransformedDataset, collate_instances
from omniseg.engine.datamodule import endless_loader, shard_loader
from omniseg.engine.module import OptimisedTask
from omniseg.metrics import coco_evaluate_all, coco_records


class InstanceDataModule(L.LightningDataModule):
    """Train loader (augmented crops) and val loader (whole images, each process its exact shard); with
    ``semantic`` each target also carries the class map (panoptic training)."""

    def __init__(self, source: DataSource, config: DataConfig, *, seed: int = 0, semantic: bool = False) -> None:
        super().__init__()
        self.config, self.seed = config, seed
        classes = {"semantic": semantic, "ignore_index": source.info.ignore_index}
        train, val = source.dataset("train"), source.dataset("val")
        if config.cache:
            train, val = CachedDataset(train), CachedDataset(val)
        self.train_set = TransformedDataset(train, InstanceTransform(
            config.img_size, scale_range=config.scale_range, hflip=config.hflip, vflip=config.vflip, rot90=config.rot90,
            color_jitter=config.color_jitter, fit=config.fit_to_crop, **classes), instances=True)
        self.val_set = TransformedDataset(val, InstanceTransform(**classes), instances=True)

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        rank, world = self._world()
        return endless_loader(self.train_set, batch_size=self.config.batch_size, seed=self.seed, rank=rank, world_size=world,
                              trainer=self.trainer, collate_fn=collate_instances, num_workers=self.config.num_workers)

    def val_dataloader(self) -> DataLoader:
        rank, world = self._world()
        return shard_loader(self.val_set, batch_size=self.config.eval_batch_size, rank=rank, world_size=world,
                            collate_fn=collate_instances, num_workers=self.config.num_workers)


class InstanceTask(OptimisedTask):
    """Trains a torchvision-style instance model; validation gathers COCO results from every process
    and scores them with pycocotools (mask AP is the monitored ``val_map``)."""

    def __init__(self, model: nn.Module, *, class_names: list[str], optim: OptimConfig,
                 mask_threshold: float = 0.5) -> None:
        super().__init__(model, optim=optim)
        self.class_names, self.mask_threshold = class_names, mask_threshold
        self._truth: list[dict] = []
        self._results: list[dict] = []

    def training_step(self, batch: tuple, batch_idx: int) -> torch.Tensor:
        images, targets = batch
        losses = self.model(list(images), list(targets))
        return self.check_loss(sum(losses.values()), len(images), parts=losses)

    def on_validation_epoch_start(self) -> None:
        self._truth, self._results = [], []

    def validation_step(self, batch: tuple, batch_idx: int) -> None:
        images, targets = batch
        # a mixed-precision run's detections in float32: metrics (and numpy) take them so
        outputs = [{k: v.float() if v.is_floating_point() else v for k, v in output.items()} for output in self.model(list(images))]
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self._distributed() else (0, 1)
        for offset, (target, output) in enumerate(zip(targets, outputs)):
            # ids follow the ShardSampler's order, so they are unique across processes
            image_id = (batch_idx * len(images) + offset) * world + rank + 1
            truth, results = coco_records(image_id, target, output, mask_threshold=self.mask_threshold)
            self._truth.append(truth)
            self._results += results
        self.validation_outputs(targets, outputs)

    def validation_outputs(self, targets: list[dict], outputs: list[dict]) -> None:
        """Subclasses score more than AP here (one validation batch's targets and outputs)."""

    def validation_summary(self) -> dict:
        """Subclasses add metrics to the validation summary here (after gathering them across processes);
        its plain numbers are logged, everything goes into ``last_validation``."""
        return {}

    def on_validation_epoch_end(self) -> None:
        truth, results = self._truth, self._results
        if self._distributed():
            gathered = [None] * self.trainer.world_size
            dist.all_gather_object(gathered, (truth, results))
            truth = [t for part in gathered for t in part[0]]
            results = [r for part in gathered for r in part[1]]
        scores = coco_evaluate_all(truth, results, self.class_names)
        segm, bbox = scores["segm"], scores["bbox"]
        summary = {"val_map": segm["AP"], "val_map50": segm["AP50"], "val_map75": segm["AP75"], "val_box_map": bbox["AP"],
                   **self.validation_summary()}
        self.last_validation = {**summary, "train_loss": self.mean_train_loss(), "segm": segm, "bbox": bbox}
        if not self.trainer.sanity_checking:
            for key, value in summary.items():
                if isinstance(value, float):
                    self.log(key, 0.0 if math.isnan(value) or value < 0 else value, prog_bar=key in ("val_map50", "val_pq"),
                             sync_dist=False)
