"""Every export measures itself against float32 (its agreement report, checked here against a direct comparison),
and each runtime's masks against torch's: ONNX Runtime and OpenVINO, float32 and INT8."""

from __future__ import annotations

import json

import numpy as np
import pytest

from omniseg.errors import ConfigError

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

# (format, quantize) -> the least pixel agreement with float32 torch on the validation images (measured on this trained
# U-Net: float32 exports 1.0; INT8 0.99998 with ONNX Runtime, 0.99995 with OpenVINO, mIoU differences +0.0001, +0.0002)
EXPORTS = {("onnx", None): 0.9999, ("onnx", "int8"): 0.999, ("openvino", None): 0.9999, ("openvino", "int8"): 0.999}


@pytest.mark.parametrize("format, quantize", list(EXPORTS))
def test_each_export_reports_its_agreement_and_its_runtime_gives_torchs_masks(format, quantize, trained_rectangles_run,
                                                                            rectangles_data, tmp_path):
    if format == "openvino":
        pytest.importorskip("openvino")
        pytest.importorskip("nncf")
    from omniseg.data.formats import load_dataset
    from omniseg.inference import Predictor
    from omniseg.inference.evaluate.exports import export_measured

    run, torch_predictor, image, _ = trained_rectangles_run
    out = tmp_path / ("model.onnx" if format == "onnx" else "model.xml")
    result = export_measured(run, out, format=format, size=(64, 64), quantize=quantize, calibration=rectangles_data, samples=12,
                        agreement_images=4)
    report = json.loads((tmp_path / "model.agreement.json").read_text())
    assert result["agreement"] == str(tmp_path / "model.agreement.json") and report["quantize"] == quantize
    assert report["images"] == 4 and report["split"] == "val" and report["calibration_samples"] == (12 if quantize else None)
    # the report's figures, computed again by hand from both backends' masks
    runtime = Predictor(run, device="cpu", backend="onnxruntime" if format == "onnx" else "openvino", exported=out)
    val = load_dataset(rectangles_data).dataset("val")
    same = total = 0
    for k in range(4):
        picture = val[k]["image"]
        ours, theirs = torch_predictor.predict(picture, tile=64), runtime.predict(picture, tile=64)
        same, total = same + int((ours == theirs).sum()), total + ours.size
    assert report["pixel_agreement"] == pytest.approx(same / total, abs=1e-12)
    assert report["pixel_agreement"] >= EXPORTS[format, quantize]
    assert abs(report["miou"]["difference"]) <= (1e-9 if quantize is None else 0.005)
    assert report["miou"]["reference"] > 0.9  # the trained run finds its rectangles
    # a larger scene than the tiles, through the runtime
    agreement = (runtime.predict(image, tile=64) == torch_predictor.predict(image, tile=64)).mean()
    assert agreement >= EXPORTS[format, quantize]


def test_exports_refuse_what_they_cannot_do(trained_rectangles_run, tmp_path):
    from omniseg.inference import Predictor
    from omniseg.inference.deploy.export import export_run

    run = trained_rectangles_run[0]
    with pytest.raises(ConfigError, match="onnx or openvino"):
        export_run(run, tmp_path / "m.pt2", format="torch", size=(64, 64), quantize="int8", calibration=tmp_path)
    with pytest.raises(ConfigError, match="--calibration DATA"):  # the run names no dataset that is here
        export_run(run, tmp_path / "m.onnx", size=(64, 64), quantize="int8")
    with pytest.raises(ConfigError, match="int8"):
        export_run(run, tmp_path / "m.onnx", size=(64, 64), quantize="int4")
    with pytest.raises(ConfigError, match="--format openvino"):
        Predictor(run, backend="openvino")
    with pytest.raises(ConfigError, match="no such ONNX file"):
        Predictor(run, backend="onnxruntime", exported=tmp_path / "missing.onnx")


def test_the_cli_exports_int8_and_predicts_with_it(trained_rectangles_run, rectangles_data, tmp_path, run_cli):
    from PIL import Image

    run, torch_predictor, image, _ = trained_rectangles_run
    code, out, err = run_cli("export", run, "--size", "64x64", "--quantize", "int8", "--calibration", rectangles_data,
                             "--samples", "8", "--out", tmp_path / "int8.onnx")
    assert code == 0, err
    assert "of pixels agree" in out and (tmp_path / "int8.agreement.json").is_file()
    Image.fromarray(image).save(tmp_path / "scene.png")
    code, _, err = run_cli("predict", run, tmp_path / "scene.png", "--out", tmp_path / "preds", "--tile", "64",
                           "--backend", "onnxruntime", "--exported", tmp_path / "int8.onnx")
    assert code == 0, err
    written = np.asarray(Image.open(tmp_path / "preds" / "scene.png"))
    assert (written == torch_predictor.predict(image, tile=64)).mean() >= EXPORTS["onnx", "int8"]
