"""Export semantic models: ``torch.export`` programs and ONNX files (extra ``onnx``), with parity checks."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
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


def export_run(run_dir: str | Path, out: str | Path, *, format: str = "onnx", size: Sequence[int] = (512, 512)) -> dict:
    """Export the model of a run as ONNX (``format="onnx"``, extra ``onnx``) or a ``torch.export`` program
    (``"torch"``, a ``.pt2`` file) at the input ``size`` (H, W; or D, H, W for volumetric models), check the
    exported outputs against PyTorch, and write the preprocessing and classes beside it (``<out>.json``).

    Returns ``{"file", "format", "input_shape", "max_abs_difference", "sidecar"}``.

    Example:
        >>> export_run("runs/demo", "model.onnx", size=(64, 64))["max_abs_difference"] < 1e-4  # doctest: +SKIP
        True
    """
    from omniseg.models.hub import load_model
    from omniseg.models.profile import example_input
    from omniseg.models.semantic.base import is_volumetric

    if format not in ("onnx", "torch"):
        raise ConfigError(f"export format {format!r} is unknown; use onnx or torch")
    model = load_model(run_dir).eval()
    volumetric = is_volumetric(model)
    sides = [int(v) for v in size]
    if len(sides) != (3 if volumetric else 2) or min(sides) < 1:
        want = "D, H, W (a volumetric model)" if volumetric else "H, W"
        raise ConfigError(f"export size {tuple(sides)} is not {want} of positive sides")
    x = example_input(model, sides[-2], sides[-1], sides[0] if volumetric else 1)
    out = Path(out)
    if format == "onnx":
        export_onnx(model, out, x)
        difference = onnx_max_difference(out, model, x)
    else:
        program = export_program(model, x)
        out.parent.mkdir(parents=True, exist_ok=True)
        torch.export.save(program, out)
        with torch.no_grad():
            difference = float((torch.export.load(out).module()(x) - model(x)).abs().max())
    card = model.card
    sidecar = out.with_suffix(".json")
    sidecar.write_text(json.dumps({
        "architecture": card.architecture, "input_shape": list(x.shape), "preprocessing": card.preprocessing,
        **card.info.to_dict(), "max_abs_difference": difference,
    }, indent=2))
    return {"file": str(out), "format": format, "input_shape": list(x.shape), "max_abs_difference": difference,
            "sidecar": str(sidecar)}


class _quiet:
    """Silence a logger (the ONNX exporter reports each pass at INFO) for the duration of a block."""

    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name)

    def __enter__(self) -> None:
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)

    def __exit__(self, *exc) -> None:
        self.logger.setLevel(self.level)
