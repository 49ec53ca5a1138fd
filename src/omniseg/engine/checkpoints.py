"""The training checkpoint (``last.ckpt``), written so that ``kill -9`` at any moment loses at most one
validation interval: each save goes to a temporary file (fsync, rename) and carries the checksum of its
contents; the one it replaces stays as ``previous.ckpt``. Loading checks the checksum and falls back to the
previous checkpoint, in one line, when the last one is truncated or damaged. Never unpickles code
(``torch.load(weights_only=True)``)."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from omniseg.core.atomic import atomic_path, temporary_name
from omniseg.core.checksum import state_checksum
from omniseg.errors import TrainingError

log = logging.getLogger(__name__)

CHECKSUM_KEY = "omniseg_checksum"
PREVIOUS_CHECKPOINT = "previous.ckpt"


class CheckpointDamaged(TrainingError):
    """A checkpoint that is missing, truncated, or does not match its checksum."""


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at ``path``, checked against the checksum it carries (checkpoints without one, written
    before omniseg kept checksums, are read as they are)."""
    if not path.is_file():
        raise CheckpointDamaged(f"{path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated zip, a pickle that is not plain data: all the same to a resume
        raise CheckpointDamaged(f"{path} is truncated or damaged ({str(exc).splitlines()[0][:160]})") from None
    if not isinstance(checkpoint, dict):
        raise CheckpointDamaged(f"{path} holds a {type(checkpoint).__name__}, not a training checkpoint")
    expected = checkpoint.pop(CHECKSUM_KEY, None)
    if expected is not None and expected != state_checksum(checkpoint):
        raise CheckpointDamaged(f"{path} does not match its checksum (the file was altered or damaged)")
    return checkpoint


def keep_as_previous(path: Path) -> None:
    """Make ``previous.ckpt`` (beside ``path``) the checkpoint now at ``path``: a hard link where the file
    system has them, else a copy; renamed into place, so it is always one whole checkpoint."""
    previous = path.with_name(PREVIOUS_CHECKPOINT)
    temporary = temporary_name(previous)
    temporary.unlink(missing_ok=True)
    try:
        os.link(path, temporary)
    except OSError:
        shutil.copyfile(path, temporary)
    os.replace(temporary, previous)


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint reading and writing, with checksums, atomic writes and the previous checkpoint
    as the fallback."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        path = Path(path)
        stamped = {**checkpoint, CHECKSUM_KEY: state_checksum(checkpoint)}
        with atomic_path(path) as temporary:
            torch.save(stamped, temporary)
            if path.is_file():  # the last good one stays until the new one is whole
                keep_as_previous(path)

    def load_checkpoint(self, path, map_location: Any | None = None, weights_only: bool | None = None) -> dict[str, Any]:
        path = Path(path)
        try:
            return read_checkpoint(path)
        except CheckpointDamaged as damaged:
            previous = path.with_name(PREVIOUS_CHECKPOINT)
            try:
                checkpoint = read_checkpoint(previous)
            except CheckpointDamaged as also:
                raise CheckpointDamaged(f"cannot resume: {damaged}, and {also}; train again with --overwrite") from None
            log.warning("%s; resuming from %s (step %s)", damaged, previous, checkpoint.get("global_step", "?"))
            return checkpoint
