import pytest
import torch
import torchvision
from torch import nn

from omniseg.errors import ConfigError
from omniseg.models import create_model


def _dilations(aspp):
    return [m.dilation[0] for m in aspp.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]


def test_parameter_parity_with_torchvision_deeplabv3():
    ours = create_model("deeplabv3", num_classes=21, aux_head=True)
    theirs = torchvision.models.segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=21, aux_loss=True)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters()) == 42_004_074


def test_aspp_rates_follow_the_output_stride():
    assert _dilations(create_model("deeplabv3", num_classes=2, encoder="resnet18", output_stride=16).aspp) == [6, 12, 18]
    assert _dilations(create_model("deeplabv3", num_classes=2, encoder="resnet18", output_stride=8).aspp) == [12, 24, 36]


def test_v3plus_uses_atrous_separable_convolutions_and_a_low_level_decoder():
    model = create_model("deeplabv3plus", num_classes=3, encoder="resnet18")
    depthwise = [m for m in model.aspp.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert [m.dilation[0] for m in depthwise] == [6, 12, 18] and all(m.groups == m.in_channels for m in depthwise)
    assert any(isinstance(m, nn.Conv2d) and m.groups > 1 for m in model.head.modules())
    assert model.encoder.strides[model.low_level_index] == 4 and model.reduce[0].out_channels == 48


def test_aux_head_and_its_absence():
    model = create_model("deeplabv3", num_classes=3, encoder="resnet18", aux_head=True).train()
    logits, aux = model(torch.randn(2, 3, 45, 61), aux=True)
    assert logits.shape == aux[0].shape == (2, 3, 45, 61)
    with pytest.raises(ValueError, match="no auxiliary head"):
        create_model("deeplabv3", num_classes=3, encoder="resnet18")(torch.randn(2, 3, 32, 32), aux=True)
    with pytest.raises(ConfigError, match="output_stride must be 8 or 16"):
        create_model("deeplabv3", num_classes=3, encoder="resnet18", output_stride=32)


def test_fpn_parameter_parity_with_smp():
    smp = pytest.importorskip("segmentation_models_pytorch")
    ours = create_model("fpn", num_classes=21, encoder="resnet34")
    theirs = smp.FPN("resnet34", encoder_weights=None, classes=21)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters()) == 23_157_973


def test_pspnet_pyramid_bins_and_aux():
    model = create_model("pspnet", num_classes=3, encoder="resnet18").train()
    pools = [m.output_size for m in model.ppm.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    assert pools == [1, 2, 3, 6] and model.encoder.strides[-1] == 8
    logits, aux = model(torch.randn(2, 3, 41, 53), aux=True)
    assert logits.shape == aux[0].shape == (2, 3, 41, 53)


def test_unet_valid_padding_reproduces_the_paper_tile():
    model = create_model("unet", num_classes=2, in_channels=1, padding="valid").eval()
    assert sum(p.numel() for p in model.parameters()) == 31_036_546  # same weights as padding="same"
    assert model.valid_output_size(572) == 388 and model.valid_output_size(570) is None
    with torch.no_grad():
        assert model.valid_forward(torch.randn(1, 1, 572, 572)).shape == (1, 2, 388, 388)


def test_unet_valid_overlap_tile_covers_any_input_and_is_translation_consistent():
    torch.manual_seed(0)
    model = create_model("unet", num_classes=3, depth=2, base_channels=8, padding="valid", norm_layer="none").eval()
    x = torch.randn(1, 3, 97, 131, requires_grad=True)
    out = model(x)
    assert out.shape == (1, 3, 97, 131)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters()) and x.grad.abs().sum() > 0
    # an interior output pixel depends only on its context window: the valid network applied to a tile
    # (aligned with the pooling grid of the padded image) gives the same values
    margin = 60 - model.valid_output_size(60)  # context the valid network consumes: 40 at depth 2
    half = margin // 2
    top, left = 20, 32  # (offset + half) % 4 == 0: same pooling grid as the full, mirrored image
    with torch.no_grad():
        direct = model.valid_forward(x[..., top : top + 60, left : left + 60])
        n = direct.shape[-1]
        torch.testing.assert_close(out[..., top + half : top + half + n, left + half : left + half + n], direct,
                                   atol=1e-5, rtol=1e-5)


def test_fcdensenet56_count_and_upsampling_of_new_maps_only():
    # the paper's Table 2 says 1.5M; this architecture (k=12, 4 layers a block, 48 first maps) has 1.377M,
    # while the same code gives 67 and 103 within 1% of the paper: see the issue note
    model = create_model("fcdensenet56", num_classes=11)
    assert sum(p.numel() for p in model.parameters()) == 1_376_795
    # transition ups see only the new maps of the block below: bottleneck 4 x 12, then 4 x 12 per block
    assert [t.in_channels for t in model.transitions_up] == [48] * 5


def test_unetplusplus_nested_nodes_and_deep_supervision():
    model = create_model("unetplusplus", num_classes=2, depth=3, base_channels=8, deep_supervision=True)
    assert sorted(model.nodes) == ["0_1", "0_2", "0_3", "1_1", "1_2", "2_1"]
    # X[0][3] sees X[0][0..2] (8 channels each) and the upsampled X[1][2] (16 channels)
    assert model.nodes["0_3"][0][0].in_channels == 3 * 8 + 16
    logits, aux = model.train()(torch.randn(2, 3, 33, 41), aux=True)
    assert logits.shape == (2, 2, 33, 41) and [a.shape for a in aux] == [(2, 2, 33, 41)] * 2
