"""Panoptic training: the instance task with a semantic branch, validated by panoptic quality (and mask AP)."""

from __future__ import annotations

import math

import torch.distributed as dist
from torch import nn

from omniseg.config import OptimConfig
from omniseg.data.sample import DatasetInfo
from omniseg.engine.instance import InstanceTask
from omniseg.inference.evaluate import score_panoptic
from omniseg.metrics.panoptic import PanopticQuality


class PanopticTask(InstanceTask):
    """Trains a panoptic model (instance losses + ``loss_semantic``); validation scores the merged output
    with panoptic quality against the truth built from each image's instances and class map, and the
    instance branch with COCO mask AP. ``val_pq`` is monitored."""

    def __init__(self, model: nn.Module, *, info: DatasetInfo, optim: OptimConfig) -> None:
        super().__init__(model, class_names=info.class_names, optim=optim)
        self.info, self.merge_options = info, getattr(model, "merge_options", {})
        self.quality = PanopticQuality(info.num_classes, things=info.things, class_names=info.class_names)

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        self.quality.reset()

    def validation_outputs(self, targets: list[dict], outputs: list[dict]) -> None:
        for target, output in zip(targets, outputs):
            score_panoptic(self.quality, target, {k: v.cpu() for k, v in output.items()}, self.info, mask_threshold=self.mask_threshold,
                           merge_options=self.merge_options)

    def validation_summary(self) -> dict:
        quality = self.quality
        if self._distributed():
            gathered = [None] * self.trainer.world_size
            dist.all_gather_object(gathered, quality)
            quality = PanopticQuality(self.info.num_classes, things=self.info.things, class_names=self.info.class_names)
            for part in gathered:
                quality.add(part)
        scores = quality.compute()
        summary = {"val_pq": scores["all"]["pq"], "val_pq_things": scores["things"]["pq"], "val_pq_stuff": scores["stuff"]["pq"],
                   "val_sq": scores["all"]["sq"], "val_rq": scores["all"]["rq"]}
        # a split without stuff or without things has no mean for them: 0 in the history, NaN in the report
        return {key: 0.0 if math.isnan(value) else value for key, value in summary.items()} | {"panoptic": scores}
