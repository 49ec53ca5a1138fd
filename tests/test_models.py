import pytest
import safetensors.torch
import timm
import torch

from omniseg.errors import ConfigError
from omniseg.models import create_model, list_models
from omniseg.models.semantic import UNet


def _check_contract(model, in_channels=3, size=(97, 131), classes=None):
    # timm zero-initialises the last norm of each residual block, which blocks gradients at init;
    # unit norm weights stand in for a trained network, so every parameter must get a gradient
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.ones_(m.weight)
    model.train()
    x = torch.randn(2, in_channels, *size)
    out = model(x)
    assert out.shape == (2, classes or model.num_classes, *size)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not no_grad, f"parameters without gradient: {no_grad[:5]}"


@pytest.mark.parametrize("upsampling", ["transposed", "bilinear", "nearest"])
def test_unet_odd_sizes_and_gradients(upsampling):
    _check_contract(create_model("unet", num_classes=4, depth=3, base_channels=8, upsampling=upsampling))


def test_unet_with_a_stride_2_stem_works_at_half_resolution_and_keeps_the_detail_branch():
    model = create_model("unet", num_classes=4, depth=2, base_channels=8, upsampling="bilinear", stem_stride=2, full_channels=4)
    _check_contract(model)
    assert model.size_divisor == 8  # two poolings after the stride-2 stem
    sizes = []
    model.encoder.blocks[0].register_forward_hook(lambda module, args, out: sizes.append(tuple(out.shape[-2:])) and None)
    model.eval()(torch.randn(1, 3, 64, 48))
    assert sizes == [(32, 24)] and model.full[0].out_channels == 4
    plain = create_model("unet", num_classes=4, depth=2, base_channels=8, upsampling="bilinear", stem_stride=2, full_channels=0)
    _check_contract(plain)  # no full-resolution branch: half-resolution logits, upsampled
    assert plain.full is None and plain.refine is None and plain.head.in_channels == 8
    with pytest.raises(ConfigError, match="stem_stride=2 needs the built-in encoder"):
        create_model("unet", num_classes=2, encoder="resnet18", stem_stride=2)


def test_unet_on_timm_encoder():
    model = create_model("unet", num_classes=3, encoder="resnet18", in_channels=1)
    assert model.encoder.strides == [2, 4, 8, 16, 32]
    _check_contract(model, in_channels=1)


def test_unet_eval_is_deterministic():
    model = create_model("unet", num_classes=3, depth=2, base_channels=8).eval()
    x = torch.randn(1, 3, 33, 35)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


def test_encoder_weights_from_safetensors_and_state_dict(tmp_path):
    reference = timm.create_model("resnet18")
    safetensors.torch.save_file(reference.state_dict(), tmp_path / "r18.safetensors")
    torch.save(reference.state_dict(), tmp_path / "r18.pth")
    for name in ("r18.safetensors", "r18.pth"):
        model = create_model("unet", num_classes=2, encoder="resnet18", encoder_weights=str(tmp_path / name))
        loaded = model.encoder.model.conv1.weight
        assert torch.equal(loaded, reference.conv1.weight)
        assert torch.equal(model.encoder.model.layer4[1].bn2.running_var, reference.layer4[1].bn2.running_var)


def test_encoder_weights_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        create_model("unet", num_classes=2, encoder="resnet18", encoder_weights=str(tmp_path / "missing.pth"))
    safetensors.torch.save_file(timm.create_model("resnet34").state_dict(), tmp_path / "r34.safetensors")
    with pytest.raises(ConfigError, match="do not fit"):
        create_model("unet", num_classes=2, encoder="resnet18", encoder_weights=str(tmp_path / "r34.safetensors"))
    with pytest.raises(ConfigError, match="unknown timm encoder 'resnet3'"):
        create_model("unet", num_classes=2, encoder="resnet3")


def test_create_model_rejects_unknown_arguments():
    with pytest.raises(ConfigError, match="takes no argument 'dept'"):
        create_model("unet", num_classes=2, dept=3)
    with pytest.raises(ConfigError, match="did you mean 'unet'"):
        create_model("unte", num_classes=2)
    assert "unet" in list_models("semantic") and list_models("nonexistent-task") == []


def test_unet_aux_is_refused():
    with pytest.raises(ValueError, match="no auxiliary"):
        UNet(num_classes=2, depth=1, base_channels=4)(torch.randn(1, 3, 8, 8), aux=True)


class _NotAStateDict:
    pass


def test_encoder_weights_refuse_pickled_objects(tmp_path):
    torch.save({"model": _NotAStateDict()}, tmp_path / "evil.pth")
    with pytest.raises(ConfigError, match="cannot be read as a plain state dict"):
        create_model("unet", num_classes=2, encoder="resnet18", encoder_weights=str(tmp_path / "evil.pth"))
