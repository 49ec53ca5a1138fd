"""INT8 models from calibration images: ONNX Runtime's static quantisation and OpenVINO's (through NNCF).

Calibration tiles come from the run's own data pipeline (:func:`calibration_tiles`): images of a dataset read as
training reads them, converted to the model's channels, normalised with the run's mean and std, cut at the exported
size at their own resolution (a tile, as prediction sees it; padded with zeros where an image is smaller, as the
runtimes pad). ONNX Runtime's quantisation writes QDQ graphs (quantise/dequantise pairs around each operator, which
its CPU provider fuses into integer kernels: VNNI where the processor has it) with per-channel weight scales and
unsigned 8-bit activations, after its shape inference and graph optimisation pass.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import torch

from omniseg.errors import ConfigError

log = logging.getLogger(__name__)


def data_of_run(run_dir: str | Path) -> dict | None:
    """The dataset a run trained on (``{"path", "format", "ignore_index"}`` from its config.yaml), or None when the
    run does not say or the data is not there."""
    from omniseg.config import flatten, load_values

    config = Path(run_dir) / "config.yaml"
    if not config.is_file():
        return None
    values = flatten(load_values(config))
    path = values.get("data.path")
    if not path or not Path(path).exists():
        return None
    return {"path": path, "format": values.get("data.format", "auto"), "ignore_index": values.get("data.ignore_index")}


def calibration_tiles(data: str | Path, card, *, size: tuple[int, int], samples: int, seed: int = 0,
                      split: str | None = None, format: str = "auto", ignore_index: int | None = None) -> list[np.ndarray]:
    """Up to ``samples`` normalised float32 tiles ``[1, C, H, W]`` (``size``) from the images of ``data`` (``split``,
    default the training split, else all images): one seeded random window per image, images drawn in a seeded order
    (cycling through them when there are fewer images than samples)."""
    from omniseg.data.formats import load_dataset
    from omniseg.data.transforms import eval_transforms

    if samples < 1:
        raise ConfigError(f"--samples {samples}: calibration needs at least one image")
    source = load_dataset(data, format=format, ignore_index=ignore_index)
    splits = source.splits()
    split = split or ("train" if "train" in splits else splits[0])
    dataset = source.dataset(split)
    if len(dataset) == 0:
        raise ConfigError(f"{data}: split {split!r} has no images to calibrate on")
    mean, std = card.normalisation(str(data))
    transform = eval_transforms(mean=mean, std=std, channels=card.kwargs.get("in_channels", 3))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(dataset))
    height, width = size
    tiles = []
    for k in range(samples):
        image = transform({"image": dataset[int(order[k % len(order)])]["image"]})["image"].as_subclass(torch.Tensor)
        h, w = image.shape[-2:]
        top, left = int(rng.integers(max(h - height, 0) + 1)), int(rng.integers(max(w - width, 0) + 1))
        window = image[:, top:top + height, left:left + width]
        tile = torch.zeros(image.shape[0], height, width)
        tile[:, :window.shape[1], :window.shape[2]] = window
        tiles.append(tile[None].numpy())
    return tiles


def quantize_onnx_int8(model_path: str | Path, out: str | Path, tiles: list[np.ndarray], *, method: str = "minmax") -> Path:
    """ONNX Runtime static INT8 quantisation of the float32 ONNX model at ``model_path`` into ``out``: QDQ format,
    per-channel signed weights, unsigned activations whose ranges ``tiles`` calibrate (``method``: "minmax",
    "percentile" (99.999th) or "entropy")."""
    try:
        from onnxruntime.quantization import (
            CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        raise ConfigError("INT8 ONNX export needs the onnx extra: pip install 'omniseg[onnx]'") from None
    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile, "entropy": CalibrationMethod.Entropy}
    if method not in methods:
        raise ConfigError(f"calibration method {method!r}: choose {', '.join(methods)}")

    class Reader(CalibrationDataReader):
        def __init__(self, name: str) -> None:
            self.items = iter([{name: tile} for tile in tiles])

        def get_next(self):
            return next(self.items, None)

    import onnx

    out = Path(out)
    name = onnx.load(str(model_path), load_external_data=False).graph.input[0].name
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser warns once per 1-D weight that per-channel scales do not apply to it
    try:
        with tempfile.TemporaryDirectory() as tmp:
            prepared = Path(tmp) / "prepared.onnx"
            quant_pre_process(str(model_path), str(prepared), skip_symbolic_shape=False)
            quantize_static(str(prepared), str(out), Reader(name), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=methods[method],
                            extra_options={"CalibPercentile": 99.999})
    finally:
        root.setLevel(level)
    return out


def export_openvino(onnx_path: str | Path, out: str | Path, tiles: list[np.ndarray] | None = None) -> Path:
    """The ONNX model at ``onnx_path`` as an OpenVINO model ``out`` (``.xml`` and its ``.bin``), weights kept in
    float32; with calibration ``tiles``, quantised to INT8 by NNCF's post-training quantisation (its performance
    preset: symmetric weights and activations, fast bias correction)."""
    from omniseg.inference.deploy.runtimes import import_openvino

    ov = import_openvino()
    model = ov.convert_model(str(onnx_path))
    if tiles is not None:
        try:
            import nncf
        except ImportError:
            raise ConfigError("INT8 OpenVINO export needs NNCF: pip install 'omniseg[openvino]'") from None
        logging.getLogger("nncf").setLevel(logging.WARNING)
        model = nncf.quantize(model, nncf.Dataset(tiles), preset=nncf.QuantizationPreset.PERFORMANCE, subset_size=len(tiles))
    out = Path(out).with_suffix(".xml")
    out.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(out), compress_to_fp16=False)
    return out
