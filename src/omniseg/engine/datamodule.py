"""Loaders for semantic training: transforms, padding collate, and process-aware samplers."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from omniseg.config import DataConfig
from omniseg.data.cache import CachedDataset
from omniseg.data.formats import DataSource
from omniseg.data.transforms import (
    PadCollate, TransformedDataset, VolumeTransform, eval_transforms_for, train_transforms,
)


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...``: every sample exactly once across processes, no padding,
    so summed confusion matrices equal a single-process evaluation."""

    def __init__(self, length: int, rank: int, world_size: int) -> None:
        self.indices = list(range(rank, length, world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class SemanticDataModule(L.LightningDataModule):
    """Train and val loaders of a :class:`DataSource` for semantic segmentation."""

    def __init__(self, source: DataSource, config: DataConfig, *, seed: int = 0, val_split: str = "val") -> None:
        super().__init__()
        self.source, self.config, self.seed = source, config, seed
        info = source.info
        self.collate = PadCollate(ignore_index=info.ignore_index)
        volumetric = source.volumetric
        train, val = source.dataset("train"), source.dataset(val_split)
        if config.cache:
            train, val = CachedDataset(train), CachedDataset(val)
        self.train_set = TransformedDataset(
            train,
            VolumeTransform(config.patch_size, flip=config.hflip, ignore_index=info.ignore_index) if volumetric
            else train_transforms(
                img_size=config.img_size,
                scale_range=config.scale_range,
                hflip=config.hflip,
                vflip=config.vflip,
                rot90=config.rot90,
                color_jitter=config.color_jitter,
                mean=config.mean,
                std=config.std,
                ignore_index=info.ignore_index,
            ),
        )
        self.val_set = TransformedDataset(val, eval_transforms_for(volumetric, mean=config.mean, std=config.std))

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _loader(self, dataset, sampler, batch_size: int, shuffle: bool, drop_last: bool) -> DataLoader:
        workers = self.config.num_workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            shuffle=shuffle if sampler is None else False,
            drop_last=drop_last,
            num_workers=workers,
            persistent_workers=workers > 0,
            collate_fn=self.collate,
            generator=torch.Generator().manual_seed(self.seed),
        )

    def train_dataloader(self) -> DataLoader:
        rank, world = self._world()
        batch_size = self.config.batch_size
        drop_last = len(self.train_set) >= batch_size * world
        sampler = None
        if world > 1:
            sampler = DistributedSampler(self.train_set, world, rank, shuffle=True, seed=self.seed, drop_last=drop_last)
        return self._loader(self.train_set, sampler, batch_size, True, drop_last)

    def val_dataloader(self) -> DataLoader:
        rank, world = self._world()
        return self._loader(self.val_set, ShardSampler(len(self.val_set), rank, world), self.config.eval_batch_size, False, False)
