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


FORMATS = ("onnx", "torch", "openvino")


def export_run(run_dir: str | Path, out: str | Path, *, format: str = "onnx", size: Sequence[int] = (512, 512),
               quantize: str | None = None, calibration: str | Path | None = None, samples: int = 32,
               calibration_method: str = "minmax") -> dict:
    """Export the model of a run as ONNX (``format="onnx"``, extra ``onnx``), a ``torch.export`` program
    (``"torch"``, a ``.pt2`` file) or an OpenVINO model (``"openvino"``, ``.xml`` + ``.bin``, extra ``openvino``) at
    the input ``size`` (H, W; or D, H, W for volumetric models), check the exported outputs against PyTorch, and
    write the preprocessing and classes beside it (``<out>.json``).

    ``quantize="int8"`` (2D semantic runs; onnx or openvino) quantises the model with ``samples`` calibration tiles
    drawn from the images of ``calibration`` (a dataset; default: the run's own training data) as the run's pipeline
    reads them (:mod:`~omniseg.inference.deploy.quantize`). ``omniseg export`` also measures the export against the
    float32 model on validation images (:func:`omniseg.inference.evaluate.exports.export_measured`).

    Returns ``{"file", "format", "quantize", "input_shape", "max_abs_difference", "sidecar"}``.

    Example:
        >>> export_run("runs/demo", "model.onnx", size=(64, 64))["max_abs_difference"] < 1e-4  # doctest: +SKIP
        True
    """
    import tempfile

    from omniseg.inference.deploy.quantize import calibration_tiles, data_of_run, export_openvino, quantize_onnx_int8
    from omniseg.inference.deploy.runtimes import OpenVinoTiles
    from omniseg.models.hub import load_model
    from omniseg.models.profile import example_input
    from omniseg.models.semantic.base import is_volumetric

    if format not in FORMATS:
        raise ConfigError(f"export format {format!r} is unknown; use {', '.join(FORMATS)}")
    if quantize not in (None, "int8"):
        raise ConfigError(f"--quantize {quantize!r}: int8 is the quantisation omniseg exports")
    model = load_model(run_dir).eval()
    volumetric = is_volumetric(model)
    if quantize and (format == "torch" or volumetric or model.card.task != "semantic"):
        raise ConfigError("INT8 export quantises 2D semantic models as onnx or openvino; export this one in float32")
    sides = [int(v) for v in size]
    if len(sides) != (3 if volumetric else 2) or min(sides) < 1:
        want = "D, H, W (a volumetric model)" if volumetric else "H, W"
        raise ConfigError(f"export size {tuple(sides)} is not {want} of positive sides")
    x = example_input(model, sides[-2], sides[-1], sides[0] if volumetric else 1)
    card = model.card
    tiles = None
    if quantize:
        data = {"path": str(calibration), "format": "auto", "ignore_index": None} if calibration is not None else data_of_run(run_dir)
        if data is None:
            raise ConfigError(f"INT8 export calibrates on images: pass --calibration DATA (the run {run_dir} names no "
                              "dataset that is here)")
        tiles = calibration_tiles(data["path"], card, size=tuple(sides), samples=samples, format=data["format"],
                                  ignore_index=data["ignore_index"])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if format == "torch":
            program = export_program(model, x)
            torch.export.save(program, out)
            with torch.no_grad():
                difference = float((torch.export.load(out).module()(x) - model(x)).abs().max())
        else:
            float32 = out if format == "onnx" and not quantize else Path(tmp) / "float32.onnx"
            export_onnx(model, float32, x)
            if format == "onnx":
                if quantize:
                    quantize_onnx_int8(float32, out, tiles, method=calibration_method)
                difference = onnx_max_difference(out, model, x)
            else:
                out = export_openvino(float32, out, tiles)
                with torch.no_grad():
                    difference = float(np.abs(OpenVinoTiles(out).run(x.numpy()) - model(x).numpy()).max())
    sidecar = out.with_suffix(".json")
    sidecar.write_text(json.dumps({
        "architecture": card.architecture, "input_shape": list(x.shape), "preprocessing": card.preprocessing,
        **card.info.to_dict(), "max_abs_difference": difference, "quantize": quantize,
    }, indent=2))
    return {"file": str(out), "format": format, "quantize": quantize, "input_shape": list(x.shape),
            "max_abs_difference": difference, "sidecar": str(sidecar)}


class _quiet:
    """Silence a logger (the ONNX exporter reports each pass at INFO) for the duration of a block."""

    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name)

    def __enter__(self) -> None:
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)

    def __exit__(self, *exc) -> None:
        self.logger.setLevel(self.level)
