"""Keeping decoded samples in memory, for datasets small enough to hold (the demos' scenes, a few hundred images)."""

from __future__ import annotations

import torch

from omniseg.data.sample import Sample


class CachedDataset(torch.utils.data.Dataset):
    """``dataset`` whose Samples are read once and then served from memory (each loader worker keeps its own
    copy). The transforms that follow must not modify their input, which omniseg's do not.

    Example:
        >>> from omniseg.data.synthetic import SyntheticShapes
        >>> cached = CachedDataset(SyntheticShapes(2, size=32))
        >>> cached[0] is cached[0]
        True
    """

    def __init__(self, dataset: torch.utils.data.Dataset) -> None:
        self.dataset = dataset
        self._samples: dict[int, Sample] = {}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Sample:
        if index not in self._samples:
            self._samples[index] = self.dataset[index]
        return self._samples[index]

    def path(self, index: int) -> str:
        return self.dataset.path(index)
