"""Saving and loading models as ``model.json`` + ``model.safetensors``: no pickle anywhere."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch
from torch import nn

from omniseg._version import __version__
from omniseg.core.atomic import write_text, write_with
from omniseg.core.checksum import state_checksum
from omniseg.core.info import DatasetInfo
from omniseg.errors import OmnisegError
from omniseg.models.builder import create_model

CARD_FILE = "model.json"
WEIGHTS_FILE = "model.safetensors"
CHECKSUM_KEY = "omniseg_sha256"  # in the safetensors metadata: the checksum of the tensors


@dataclass
class ModelCard:
    """Everything needed to rebuild and use a model besides its weights.

    Attributes:
        architecture: registry name of the model.
        kwargs: the builder's arguments (``encoder_weights`` is dropped: the saved weights replace it).
        info: the dataset's classes, palette and ignore_index.
        preprocessing: ``{"mean": [...], "std": [...]}`` applied to 0..1 images before the model.
        task: "semantic", "instance", ...
    """

    architecture: str
    kwargs: dict[str, Any]
    info: DatasetInfo
    preprocessing: dict[str, Any] = field(default_factory=dict)
    task: str = "semantic"
    version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        return {
            "architecture": self.architecture,
            "kwargs": self.kwargs,
            "task": self.task,
            "dataset_info": self.info.to_dict(),
            "preprocessing": self.preprocessing,
            "omniseg_version": self.version,
        }

    def normalisation(self, where: str | Path = "model.json") -> tuple[list[float], list[float]]:
        """``(mean, std)`` of 0..1 pixel values that the model's input is normalised with (2D semantic models);
        ``where`` (the run directory) is named when the card lacks them."""
        mean, std = self.preprocessing.get("mean"), self.preprocessing.get("std")
        if not (_numbers(mean) and _numbers(std) and len(mean) == len(std) and all(s > 0 for s in std)):
            raise OmnisegError(f"{Path(where) / CARD_FILE if Path(where).is_dir() else where} has no preprocessing statistics "
                               f"(\"preprocessing\": {{\"mean\": [...], \"std\": [...]}}, one positive std per channel); "
                               "add the values the model was trained with, or save the model with omniseg again")
        return [float(v) for v in mean], [float(v) for v in std]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelCard:
        return cls(
            architecture=values["architecture"],
            kwargs=dict(values.get("kwargs", {})),
            info=DatasetInfo.from_dict(values["dataset_info"]),
            preprocessing=dict(values.get("preprocessing", {})),
            task=values.get("task", "semantic"),
            version=values.get("omniseg_version", "unknown"),
        )


def _numbers(values: Any) -> bool:
    return isinstance(values, (list, tuple)) and bool(values) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def save_model(model: nn.Module, directory: str | Path, card: ModelCard) -> None:
    """Write ``model.json`` and ``model.safetensors`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # trained weights replace the weights a model was built from
    kwargs = {k: v for k, v in card.kwargs.items() if k not in ("encoder_weights", "weights", "checkpoint")}
    values = {**card.to_dict(), "kwargs": kwargs}
    write_text(directory / CARD_FILE, json.dumps(values, indent=2))
    # contiguous copies: models trained channels-last hold weights in another memory layout
    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    metadata = {CHECKSUM_KEY: state_checksum(state)}  # a damaged copy that still parses is told apart
    write_with(directory / WEIGHTS_FILE, lambda path: safetensors.torch.save_file(state, str(path), metadata=metadata))


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Raise an error naming the first keys of ``state`` that ``model`` lacks, misses or holds in another shape."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        detail = "; ".join(f"{kind} {keys[:3]}" for kind, keys in (
            ("missing", missing), ("unexpected", unexpected),
            ("wrong shape", [f"{k} {tuple(state[k].shape)} (model {tuple(own[k].shape)})" for k in wrong])) if keys)
        raise OmnisegError(f"{what} does not fit the model: {detail}; the card and weights come from different models")


def load_card(directory: str | Path) -> ModelCard:
    path = Path(directory) / CARD_FILE
    if not path.is_file():
        raise OmnisegError(f"{path} not found; pass a run directory written by `omniseg train`")
    try:
        return ModelCard.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise OmnisegError(f"{path} is not a valid model card ({exc}); re-export the model") from None


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``model.safetensors``, checked against the checksum it carries (when it has one)."""
    try:
        with safetensors.safe_open(str(path), "pt") as handle:
            expected = (handle.metadata() or {}).get(CHECKSUM_KEY)
            state = {name: handle.get_tensor(name) for name in handle.keys()}
    except (OSError, ValueError, safetensors.SafetensorError) as exc:
        raise OmnisegError(f"{path} is truncated or damaged ({str(exc).splitlines()[0]}); copy it again, or train again "
                           "(an interrupted run continues with --resume)") from None
    if expected is not None and expected != state_checksum(state):
        raise OmnisegError(f"{path} does not match the checksum it was saved with: the file was altered or damaged; "
                           "copy it again, or train again")
    return state


def load_model(directory: str | Path) -> nn.Module:
    """Rebuild the model of a run directory from ``model.json`` and load ``model.safetensors``.

    The returned module is in eval mode and carries its :class:`ModelCard` as ``model.card``.

    Example:
        >>> model = load_model("runs/demo")  # doctest: +SKIP
        >>> model.card.info.class_names  # doctest: +SKIP
    """
    card = load_card(directory)
    weights = Path(directory) / WEIGHTS_FILE
    if not weights.is_file():
        raise OmnisegError(f"{weights} not found; the run has not saved weights yet")
    model = create_model(card.architecture, **card.kwargs)
    state = read_weights(weights)
    check_state_dict(model, state, f"{weights} ({card.architecture} {card.kwargs})")
    model.load_state_dict(state)
    model.card = card
    return model.eval()
