"""bfloat16 where the processor computes it faster, measured; float32 where it has no bfloat16 instructions; losses,
softmaxes and outputs in float32; masks in bfloat16 that agree with float32's."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from omniseg.core import precision as precision_module
from omniseg.core.precision import bf16_capable, choose_inference_precision, choose_training_precision, resolve_precision
from omniseg.errors import ConfigError


@pytest.fixture
def processor(monkeypatch):
    """Set whether the processor has bfloat16 instructions: ``processor(False)`` simulates an older one."""

    def simulate(has_bf16: bool) -> None:
        for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
            monkeypatch.setattr(torch.cpu, name, lambda: has_bf16, raising=False)
        precision_module.bf16_speedup.cache_clear()

    yield simulate
    precision_module.bf16_speedup.cache_clear()


def _never(*_):
    raise AssertionError("nothing is measured on a processor without bfloat16")


def test_a_processor_without_bf16_keeps_float32_under_auto_without_measuring(processor, trained_rectangles_run, rectangles_data):
    from omniseg.inference import Predictor
    from omniseg.plan import make_plan

    processor(False)
    assert not bf16_capable("cpu")
    assert resolve_precision("auto", torch.device("cpu")) == "32"
    chosen, facts = choose_training_precision("auto", "cpu", _never)
    assert chosen == "32-true" and "no bfloat16 instructions" in facts["reason"]
    assert choose_inference_precision("auto", "cpu", _never)[0] == "32"
    assert Predictor(trained_rectangles_run[0], precision="auto").precision == "32"
    plan = make_plan(rectangles_data, time_budget=30)
    assert plan.values["train.precision"] == "32-true" and "no bfloat16" in plan.reasons["train.precision"]


def test_auto_picks_bf16_only_when_a_measured_step_is_faster_by_the_margin(processor, monkeypatch):
    processor(True)
    times = {"32-true": 1.0}
    for bf16, expected in ((0.5, "bf16-mixed"), (0.8, "32-true"), (0.7, "bf16-mixed"), (math.inf, "32-true")):
        times["bf16-mixed"] = bf16
        chosen, facts = choose_training_precision("auto", "cpu", times.__getitem__)
        assert chosen == expected, bf16
        assert facts["step_seconds"] == {"32-true": 1.0, "bf16-mixed": None if bf16 == math.inf else bf16}
    assert "not finite" in facts["reason"]
    assert choose_training_precision("32", "cpu", _never) == ("32-true", {"asked": "32", "chosen": "32-true", "reason": "asked for"})
    with pytest.raises(ConfigError, match="auto, 32, 32-true, bf16-mixed"):
        choose_training_precision("fp8", "cpu", _never)
    # GPUs: bfloat16 where supported, else float16 with its scaler (nothing measured)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert choose_training_precision("auto", "cuda", _never)[0] == "16-mixed"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert choose_training_precision("auto", "cuda", _never)[0] == "bf16-mixed"


def test_bf16_training_keeps_the_loss_in_float32_and_records_the_choice(rectangles_data, tmp_path, run_cli):
    from omniseg.config import OptimConfig
    from omniseg.engine.module import SemanticTask
    from omniseg.losses import build_loss
    from omniseg.models import create_model

    model = create_model("unet", num_classes=3, depth=2, base_channels=8)
    task = SemanticTask(model, build_loss("ce+dice", ignore_index=255), num_classes=3, ignore_index=255, optim=OptimConfig())
    x, y = torch.randn(2, 3, 32, 32), torch.randint(0, 3, (2, 32, 32))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
        loss = task._loss(logits, y)
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    assert loss.item() == pytest.approx(task.loss(logits.float(), y).item(), rel=1e-6)

    common = ["--data", rectangles_data, "--no-plan", "--model", "unet", "--set", "model.kwargs.depth=2", "--set", "model.kwargs.base_channels=8",
              "--img-size", "64", "--batch-size", "4", "--set", "train.max_steps=6", "--set", "train.epochs=null", "--no-progress"]
    code, _, err = run_cli("train", *common, "--precision", "bf16-mixed", "--out", tmp_path / "bf16")
    assert code == 0, err
    metrics = json.loads((tmp_path / "bf16" / "metrics.json").read_text())
    assert metrics["precision"] == {"asked": "bf16-mixed", "chosen": "bf16-mixed", "reason": "asked for"}
    assert math.isfinite(metrics["val_loss"] if "val_loss" in metrics else metrics["miou"])
    if bf16_capable("cpu"):  # auto measured both precisions on this processor
        code, _, err = run_cli("train", *common, "--precision", "auto", "--out", tmp_path / "auto")
        assert code == 0, err
        facts = json.loads((tmp_path / "auto" / "metrics.json").read_text())["precision"]
        assert set(facts["step_seconds"]) == {"32-true", "bf16-mixed"} and facts["chosen"] in facts["step_seconds"]
        faster = facts["step_seconds"]["32-true"] / facts["step_seconds"]["bf16-mixed"] >= precision_module.BF16_MARGIN
        assert facts["chosen"] == ("bf16-mixed" if faster else "32-true")


def test_bf16_masks_agree_with_float32s(trained_rectangles_run, trained_tiny_sam):
    from omniseg.inference import Predictor
    from omniseg.inference.promptable.prompt_predictor import PromptPredictor

    run, float32, image, truth = trained_rectangles_run
    bf16 = Predictor(run, device="cpu", precision="bf16")
    ours, theirs = float32.predict(image, tile=64), bf16.predict(image, tile=64)
    assert (ours == theirs).mean() >= 0.995
    assert bf16.predict_proba(image[:64, :64]).dtype == torch.float32  # softmax and outputs in float32
    # Segment Anything's image encoder in bfloat16: each mask of a point grid against float32's
    from .conftest import rectangle_scenes

    scene, _ = rectangle_scenes(1, 128, np.random.default_rng(3))[0]
    predictors = {p: PromptPredictor(trained_tiny_sam, device="cpu", precision=p) for p in ("32", "bf16")}
    for predictor in predictors.values():
        predictor.set_image(scene)
    ious = []
    for y in range(16, 128, 32):
        for x in range(16, 128, 32):
            a, b = (p.predict(points=[[x, y]], multimask=False).masks[0] for p in predictors.values())
            union = (a | b).sum()
            ious.append((a & b).sum() / union if union else 1.0)  # both empty: they agree
    assert np.mean(ious) >= 0.97
