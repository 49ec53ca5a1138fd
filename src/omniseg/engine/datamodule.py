"""Loaders for semantic training: transforms, padding collate, and process-aware samplers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import lightning as L
import torch
from torch.utils.data import DataLoader, Sampler

from omniseg.config import DataConfig
from omniseg.data.batch_augment import split_train_transforms
from omniseg.data.cache import CachedDataset
from omniseg.data.formats import DataSource
from omniseg.data.transforms import (
    PadCollate, TransformedDataset, VolumeTransform, eval_transforms_for,
)
from omniseg.engine.prefetch import PrefetchLoader


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...``: every sample exactly once across processes, no padding,
    so summed confusion matrices equal a single-process evaluation."""

    def __init__(self, length: int, rank: int, world_size: int) -> None:
        self.indices = list(range(rank, length, world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class EndlessSampler(Sampler[tuple[int, int]]):
    """Training draws without end: one seeded permutation of the dataset after another, each process
    taking every ``world_size``-th index of each (the permutation padded to a multiple of ``world_size``).

    Training is counted in optimiser steps; an epoch is only a reporting unit, so a small dataset costs no
    per-epoch work (no loader restarts, no validation tied to a pass over 25 images). ``consumed`` (a
    callable, read when iteration starts) gives how many indices this process already drew, so a resumed
    run continues the same stream. Each draw is ``(index, augmentation seed)``: the seed follows the draw's
    place in the stream, so a resumed run augments every sample as the uninterrupted run did, whatever the
    loader workers or the random state (see :class:`~omniseg.data.transforms.TransformedDataset`).
    """

    def __init__(self, length: int, *, seed: int, rank: int = 0, world_size: int = 1,
                 consumed: Callable[[], int] | None = None) -> None:
        if length < 1:
            raise ValueError("an endless sampler needs at least one sample")
        self.length, self.seed, self.rank, self.world_size = length, seed, rank, world_size
        self.per_process = -(-length // world_size)
        self.consumed = consumed or (lambda: 0)

    def permutation(self, epoch: int) -> list[int]:
        """This process's share of the permutation of reporting epoch ``epoch``."""
        order = torch.randperm(self.length, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)).tolist()
        order += order[: self.per_process * self.world_size - self.length]
        return order[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        draw = self.consumed()
        epoch, offset = divmod(draw, self.per_process)
        while True:
            for index in self.permutation(epoch)[offset:]:
                yield index, (self.seed * 1_000_003 + draw) * self.world_size + self.rank
                draw += 1
            epoch, offset = epoch + 1, 0


def endless_loader(dataset, *, batch_size: int, seed: int, rank: int, world_size: int, trainer, collate_fn,
                   num_workers: int) -> DataLoader:
    """The training loader of every task: batches from an :class:`EndlessSampler` that resumes where
    ``trainer``'s step count left it. It has no length, so Lightning runs one endless epoch."""
    sampler = EndlessSampler(len(dataset), seed=seed, rank=rank, world_size=world_size,
                             consumed=lambda: trainer.global_step * batch_size if trainer is not None else 0)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      persistent_workers=num_workers > 0, collate_fn=collate_fn)


def shard_loader(dataset, *, batch_size: int, rank: int, world_size: int, collate_fn, num_workers: int) -> DataLoader:
    """The validation loader of every task: each process its exact :class:`ShardSampler` share, in order."""
    return DataLoader(dataset, batch_size=batch_size, sampler=ShardSampler(len(dataset), rank, world_size),
                      num_workers=num_workers, persistent_workers=num_workers > 0, collate_fn=collate_fn)


class SemanticDataModule(L.LightningDataModule):
    """Train and val loaders of a :class:`DataSource` for semantic segmentation.

    2D training images are cropped per sample and flipped, turned, colour-jittered and normalised a whole batch
    at a time on the model's device (:mod:`omniseg.data.batch_augment`: the same augmentation as the one-sample
    pipeline); without loader workers the training batches are made by a thread, ahead of the step
    (:class:`~omniseg.engine.prefetch.PrefetchLoader`). ``fetch_seconds()``: the seconds training waited for them."""

    def __init__(self, source: DataSource, config: DataConfig, *, seed: int = 0, val_split: str = "val") -> None:
        super().__init__()
        self.source, self.config, self.seed = source, config, seed
        info = source.info
        self.collate = PadCollate(ignore_index=info.ignore_index)
        volumetric = source.volumetric
        train, val = source.dataset("train"), source.dataset(val_split)
        if config.cache:
            train, val = CachedDataset(train), CachedDataset(val)
        self.batch_augment = None
        if volumetric:
            per_sample = VolumeTransform(config.patch_size, flip=config.hflip, ignore_index=info.ignore_index)
        else:
            per_sample, self.batch_augment = split_train_transforms(config, ignore_index=info.ignore_index)
        self.train_set = TransformedDataset(train, per_sample)
        self._train_loader: PrefetchLoader | None = None
        self.val_set = TransformedDataset(val, eval_transforms_for(volumetric, mean=config.mean, std=config.std,
                                                                   channels=config.channels))

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> DataLoader | PrefetchLoader:
        rank, world = self._world()
        loader = endless_loader(self.train_set, batch_size=self.config.batch_size, seed=self.seed, rank=rank, world_size=world,
                                trainer=self.trainer, collate_fn=self.collate, num_workers=self.config.num_workers)
        if self.config.num_workers == 0:  # worker processes already load ahead
            self._train_loader = loader = PrefetchLoader(loader)
        return loader

    def fetch_seconds(self) -> float | None:
        """Seconds the training loop waited for batches (None with worker processes: not counted here)."""
        return None if self._train_loader is None else self._train_loader.wait_seconds

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        if self.batch_augment is not None and "augment" in batch:
            return self.batch_augment(batch)
        return batch

    def val_dataloader(self) -> DataLoader:
        rank, world = self._world()
        return shard_loader(self.val_set, batch_size=self.config.eval_batch_size, rank=rank, world_size=world,
                            collate_fn=self.collate, num_workers=self.config.num_workers)
