"""Exported models as a Predictor's backend: ONNX Runtime (float32 or INT8 ``.onnx`` files) and OpenVINO (``.xml``
models, float32 or INT8), each run on a tile at a time, with the Predictor's own preprocessing before and softmax
after. Tiles smaller than the exported size (images smaller than a tile) are padded at the bottom and right and the
output cropped back. Without a file, the onnxruntime backend exports the run's float32 model at its tile size into
the run directory (once, checked against PyTorch by the export)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from omniseg.errors import ConfigError


class _Tiles(ABC):
    """``tiles [B, C, h, w]`` (normalised float) -> logits ``[B, K, h, w]``, one tile at a time through ``run``."""

    path: Path
    height: int
    width: int

    @abstractmethod
    def run(self, tile: np.ndarray) -> np.ndarray:
        """Logits ``[1, K, H, W]`` of one normalised tile ``[1, C, H, W]`` at the exported size."""

    def __call__(self, tiles: torch.Tensor) -> torch.Tensor:
        h, w = tiles.shape[-2:]
        if h > self.height or w > self.width:
            raise ConfigError(f"{self.path} takes tiles of {self.height} x {self.width}, not {h} x {w}; predict with --tile {self.height}")
        padded = F.pad(tiles.float(), (0, self.width - w, 0, self.height - h)).contiguous().cpu().numpy()
        outputs = [self.run(padded[k:k + 1]) for k in range(len(padded))]
        return torch.from_numpy(np.concatenate(outputs))[..., :h, :w]


class OnnxTiles(_Tiles):
    """The ONNX model at ``path`` run by ONNX Runtime's CPU provider (INT8 QDQ files run its integer kernels)."""

    def __init__(self, path: str | Path) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ConfigError("the onnxruntime backend needs the onnx extra: pip install 'omniseg[onnx]'") from None
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"{self.path}: no such ONNX file; write one with omniseg export RUN --format onnx --out {self.path}")
        self.session = ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        entry = self.session.get_inputs()[0]
        self.input_name = entry.name
        self.batch, self.channels, self.height, self.width = entry.shape

    def run(self, tile: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: tile})[0]


class OpenVinoTiles(_Tiles):
    """The OpenVINO model at ``path`` (``.xml`` beside its ``.bin``) compiled for the CPU. ``precision="32"`` keeps
    float32 arithmetic (OpenVINO would otherwise compute float32 models in bfloat16 on processors that have it);
    ``"auto"`` lets OpenVINO choose."""

    def __init__(self, path: str | Path, *, precision: str = "32") -> None:
        ov = import_openvino()
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"{self.path}: no such OpenVINO model; write one with omniseg export RUN --format openvino --out {self.path}")
        config = {"INFERENCE_PRECISION_HINT": "f32"} if precision == "32" else {}
        self.compiled = ov.Core().compile_model(str(self.path), "CPU", config)
        shape = self.compiled.input(0).get_partial_shape()
        self.batch, self.channels, self.height, self.width = (int(side.get_length()) for side in shape)
        self.request = self.compiled.create_infer_request()

    def run(self, tile: np.ndarray) -> np.ndarray:
        return np.array(self.request.infer({0: tile})[self.compiled.output(0)])


def import_openvino():
    try:
        import openvino as ov
    except ImportError:
        raise ConfigError("OpenVINO needs the openvino extra: pip install 'omniseg[openvino]'") from None
    return ov


def onnx_model_for(run_dir: Path, tile: int) -> Path:
    """The run's model exported at ``tile`` x ``tile`` (``model_<tile>.onnx`` in the run directory), exported now
    if it is not there yet."""
    from omniseg.inference.deploy.export import export_run

    path = Path(run_dir) / f"model_{tile}.onnx"
    if not path.is_file():
        export_run(run_dir, path, format="onnx", size=(tile, tile))
    return path


def runtime_tiles(backend: str, exported: str | Path | None, run_dir: Path | None, tile: int) -> _Tiles:
    """The tile function of ``backend`` ("onnxruntime" or "openvino") for the ``exported`` file (see
    :class:`~omniseg.inference.prediction.predictor.Predictor`)."""
    if backend == "openvino":
        if exported is None:
            raise ConfigError("the openvino backend runs an exported model: omniseg export RUN --format openvino --out "
                              "model.xml, then pass it (--exported model.xml)")
        return OpenVinoTiles(exported)
    if exported is None and run_dir is None:
        raise ConfigError("the onnxruntime backend needs the run directory (to export the model) or an exported .onnx file")
    return OnnxTiles(exported or onnx_model_for(run_dir, tile))
