"""Export semantic models: ``torch.export`` programs and ONNX files (extra ``onnx``), with parity checks."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from omniseg.errors import ConfigError


def export_program(model: nn.Module, example: torch.Tensor) -> torch.export.ExportedProgram:
    """``torch.export`` of ``model`` in eval mode at the shape of ``example`` (a static graph)."""
    model = model.eval()
    with torch.no_grad():
        return torch.export.export(model, (example,))


def export_onnx(model: nn.Module, path: str | Path, example: torch.Tensor, *, opset: int = 18) -> Path:
    """Write ``model`` (eval mode) as ONNX at the shape of ``example``; needs the ``onnx`` extra.

    Returns the path. The graph takes ``image`` and returns ``logits``.
    """
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise ConfigError("ONNX export needs the onnx extra: pip install 'omniseg[onnx]'") from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    with warnings.catch_warnings(), _quiet("torch.onnx"):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (example,), input_names=["image"], output_names=["logits"],
                                    opset_version=opset, dynamo=True, verbose=False)
    program.save(str(path))
    return path


def onnx_max_difference(path: str | Path, model: nn.Module, example: torch.Tensor) -> float:
    """Largest absolute difference between onnxruntime's output for ``path`` and ``model(example)``."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ConfigError("ONNX parity checks need the onnx extra: pip install 'omniseg[onnx]'") from None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: example.numpy()})
    with torch.no_grad():
        expected = model.eval()(example).numpy()
    return float(np.abs(onnx_out - expected).max())


class _quiet:
    """Silence a logger (the ONNX exporter reports each pass at INFO) for the duration of a block."""

    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name)

    def __enter__(self) -> None:
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)

    def __exit__(self, *exc) -> None:
        self.logger.setLevel(self.level)
