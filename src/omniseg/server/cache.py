"""A least-recently-used store of image embeddings bounded by their bytes."""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import torch


@dataclass
class Embedding:
    """What a prompt needs of an encoded image: its features (the embedding, or the tuple with its high-resolution
    features), its size and the resized input's size."""

    model: str
    features: torch.Tensor | tuple[torch.Tensor, ...]
    original_size: tuple[int, int]
    input_size: tuple[int, int]

    @property
    def nbytes(self) -> int:
        parts = self.features if isinstance(self.features, tuple) else (self.features,)
        return sum(part.numel() * part.element_size() for part in parts)


class EmbeddingCache:
    """Embeddings by id; adding one past ``max_bytes`` drops the least recently used (thread-safe)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, Embedding] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, embedding: Embedding) -> str:
        key = uuid.uuid4().hex
        with self._lock:
            self._items[key] = embedding
            while self.nbytes > self.max_bytes and len(self._items) > 1:
                self._items.popitem(last=False)
        return key

    def get(self, key: str) -> Embedding | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    @property
    def nbytes(self) -> int:
        return sum(item.nbytes for item in self._items.values())

    def __len__(self) -> int:
        return len(self._items)
