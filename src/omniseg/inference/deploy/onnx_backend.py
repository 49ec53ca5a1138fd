"""onnxruntime as a Predictor's backend: the run's model exported to ONNX at its tile size (once, beside the run's
weights, checked against PyTorch by the export) and run by onnxruntime on each tile, with the Predictor's own
preprocessing before and softmax after. Tiles smaller than the exported size (images smaller than a tile) are
padded at the bottom and right and the output cropped back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from omniseg.errors import ConfigError


class OnnxTiles:
    """``tiles [B, C, h, w]`` (normalised float) -> logits ``[B, K, h, w]`` from the ONNX model at ``path``."""

    def __init__(self, path: str | Path) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ConfigError("the onnxruntime backend needs the onnx extra: pip install 'omniseg[onnx]'") from None
        self.path = Path(path)
        self.session = ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        entry = self.session.get_inputs()[0]
        self.input_name = entry.name
        self.batch, self.channels, self.height, self.width = entry.shape

    def __call__(self, tiles: torch.Tensor) -> torch.Tensor:
        h, w = tiles.shape[-2:]
        if h > self.height or w > self.width:
            raise ConfigError(f"{self.path} takes tiles of {self.height} x {self.width}, not {h} x {w}; predict with --tile {self.height}")
        padded = F.pad(tiles.float(), (0, self.width - w, 0, self.height - h)).contiguous().cpu().numpy()
        outputs = [self.session.run(None, {self.input_name: padded[k:k + 1]})[0] for k in range(len(padded))]
        return torch.from_numpy(np.concatenate(outputs))[..., :h, :w]


def onnx_model_for(run_dir: Path, tile: int) -> Path:
    """The run's model exported at ``tile`` x ``tile`` (``model_<tile>.onnx`` in the run directory), exported now
    if it is not there yet."""
    from omniseg.inference.deploy.export import export_run

    path = Path(run_dir) / f"model_{tile}.onnx"
    if not path.is_file():
        export_run(run_dir, path, format="onnx", size=(tile, tile))
    return path
