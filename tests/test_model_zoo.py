"""Contract tests over every registered semantic model, and the paper parameter counts."""

import pytest
import torch

from omniseg.data.synthetic import SyntheticShapes
from omniseg.data.transforms import PadCollate, TransformedDataset, eval_transforms
from omniseg.losses import build_loss
from omniseg.models import create_model, list_models

SEMANTIC = list_models("semantic")


@pytest.mark.parametrize("name", SEMANTIC)
def test_contract_odd_size_gradients_no_nan_deterministic_eval(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3)
    # timm zero-initialises some norms, which blocks gradients at init; unit weights stand in for training
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.ones_(m.weight)
    x = torch.randn(2, 3, 97, 131)
    has_aux = model.has_aux  # auxiliary heads learn through forward(x, aux=True)
    out, extra = model.train()(x, aux=True) if has_aux else (model.train()(x), [])
    for y in (out, *extra):
        assert y.shape == (2, 3, 97, 131) and torch.isfinite(y).all()
    sum(y.square().mean() for y in (out, *extra)).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient for {missing[:5]}"
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x[:1]), model(x[:1]))


@pytest.mark.parametrize(
    ("name", "kwargs", "expected", "source"),
    [
        ("unet", {"num_classes": 2, "in_channels": 1}, 31.03e6, "Ronneberger et al. 2015, same padding"),
        ("segnet", {"num_classes": 11}, 29.5e6, "Badrinarayanan et al. 2017, Table 6 (29.5M)"),
        ("fcn8s", {"num_classes": 21}, 134e6, "Long et al. 2015, VGG16 FCN-8s (134M)"),
        ("fcdensenet67", {"num_classes": 11}, 3.5e6, "Jegou et al. 2017, Table 2 (3.5M)"),
        ("unetplusplus", {"num_classes": 1}, 9.04e6, "Zhou et al. 2018, Table 1 (9.04M)"),
        ("fcdensenet103", {"num_classes": 11}, 9.4e6, "Jegou et al. 2017, Table 2 (9.4M)"),
    ],
)
def test_paper_parameter_counts(name, kwargs, expected, source):
    count = sum(p.numel() for p in create_model(name, **kwargs).parameters())
    assert abs(count - expected) / expected < 0.02, f"{name}: {count:,} vs {expected:,.0f} ({source})"


@pytest.mark.slow
@pytest.mark.parametrize("name", SEMANTIC)
def test_trains_30_steps_with_falling_loss(name):
    torch.manual_seed(0)
    data = TransformedDataset(SyntheticShapes(8, size=64, seed=1), eval_transforms())
    batch = PadCollate()([data[i] for i in range(8)])
    model = create_model(name, num_classes=5).train()
    loss_fn = build_loss("ce")
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    losses = []
    for step in range(30):
        idx = torch.arange(4) + 4 * (step % 2)
        loss = loss_fn(model(batch["image"][idx]), batch["mask"][idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.8 * first, f"{name}: loss {first:.3f} -> {last:.3f}"


def test_profile_counts_flops_of_a_known_convolution():
    from omniseg.models.profile import profile_model

    model = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    result = profile_model(model, size=16, repeats=1)
    assert result["parameters"] == 8 * 3 * 9
    assert result["gflops"] * 1e9 == 2 * 8 * 3 * 9 * 16 * 16  # multiply-adds count twice
    assert result["latency_ms"] > 0


def test_models_benchmark_writes_markdown(run_cli, tmp_path):
    out = tmp_path / "models.md"
    code, _, err = run_cli("models", "--benchmark", "--size", "64", "--markdown", out)
    assert code == 0, err
    text = out.read_text()
    assert all(f"`{name}`" in text for name in SEMANTIC) and "GFLOPs" in text
