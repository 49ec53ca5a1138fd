"""A checksum of tensors and the plain values around them (a state dict, a training checkpoint), independent of
device and memory layout, so a file can carry the checksum of what it holds and a reader can tell a damaged copy."""

from __future__ import annotations

import hashlib
from typing import Any

import torch


def state_checksum(value: Any) -> str:
    """The sha256 (hex) of ``value``: nested dicts (in key order), lists and tuples, tensors (dtype, shape and
    contiguous bytes) and plain values (their ``repr``)."""
    digest = hashlib.sha256()

    def walk(item: Any) -> None:
        if isinstance(item, torch.Tensor):
            tensor = item.detach().cpu().contiguous().reshape(-1)
            digest.update(f"T{tensor.dtype}{tuple(item.shape)}".encode())
            digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
        elif isinstance(item, dict):
            digest.update(b"{")
            for key in sorted(item, key=repr):
                digest.update(repr(key).encode())
                walk(item[key])
            digest.update(b"}")
        elif isinstance(item, (list, tuple)):
            digest.update(b"[")
            for element in item:
                walk(element)
            digest.update(b"]")
        else:
            digest.update(repr(item).encode())

    walk(value)
    return digest.hexdigest()
