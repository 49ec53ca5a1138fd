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
    with torch.device("meta"):  # the paper's network, shapes only
        model = create_model("unet", num_classes=2, in_channels=1, padding="valid").eval()
        same = create_model("unet", num_classes=2, in_channels=1)
        assert model.valid_forward(torch.randn(1, 1, 572, 572)).shape == (1, 2, 388, 388)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in same.parameters())  # the same weights
    assert model.valid_output_size(572) == 388 and model.valid_output_size(570) is None


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
    # as exact re-implementations report (1.4M, SimJeg/FC-DenseNet issue 31), while the same code gives
    # 67 and 103 within 1% of the paper
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


def test_deeplabv3plus_on_xception65_at_output_stride_16_and_8():
    for stride in (16, 8):
        model = create_model("deeplabv3plus", num_classes=3, encoder="xception65", output_stride=stride).eval()
        assert model.encoder.strides[-1] == stride and model.encoder.strides[model.low_level_index] == 4
        with torch.no_grad():
            assert model(torch.randn(1, 3, 65, 70)).shape == (1, 3, 65, 70)


def _layer_indices(model):
    return model.layers, model.main_positions, model.aux_positions


def test_setr_decoders_read_the_paper_layers():
    # ViT-L has 24 layers: Naive/PUP decode the last, MLA layers 6/12/18/24; aux heads at 10/15/20
    with torch.device("meta"):
        naive = create_model("setr_naive", num_classes=19, aux_head=True)
        mla = create_model("setr_mla", num_classes=19)
        pup = create_model("setr_pup", num_classes=19)
    assert _layer_indices(naive) == ([9, 14, 19, 23], [3], [0, 1, 2])
    assert mla.layers == [5, 11, 17, 23] and len(mla.decode_head.heads) == 4
    # PUP: four 2x stages bring the 1/16 tokens back to full resolution
    assert len(pup.decode_head.stages) == 4 and pup.size_divisor == 16


def test_setr_pup_upsamples_progressively_and_aux_heads_train():
    torch.manual_seed(0)
    model = create_model("setr_pup", num_classes=4, encoder="vit_tiny_patch16_224", aux_head=True).train()
    features = model.encoder(torch.randn(1, 3, 64, 96))
    assert features[-1].shape[-2:] == (4, 6)  # 16x16 patches
    logits, aux = model(torch.randn(2, 3, 50, 70), aux=True)
    assert logits.shape == (2, 4, 50, 70) and [a.shape for a in aux] == [(2, 4, 50, 70)] * 3


def test_segformer_stages_strides_and_efficient_attention():
    model = create_model("segformer_b0", num_classes=3).eval()
    features = model.encoder(torch.randn(1, 3, 64, 96))
    assert [f.shape[1:] for f in features] == [(32, 16, 24), (64, 8, 12), (160, 4, 6), (256, 2, 3)]
    # spatial reduction 8/4/2/1: keys and values of stage 1 come from a grid 8x smaller per side
    assert [model.encoder.block1[0].attn.sr.stride, model.encoder.block4[0].attn.sr_ratio] == [(8, 8), 1]
    assert model.linear_fuse[0].in_channels == 4 * 256


def test_segformer_loads_mit_weights_of_the_release_layout(tmp_path):
    from omniseg.models.encoders.mit import MixTransformer

    torch.manual_seed(0)
    reference = MixTransformer("mit_b0")
    state = {**reference.state_dict(), "head.weight": torch.zeros(1000, 256), "head.bias": torch.zeros(1000)}
    assert "block1.0.attn.sr.weight" in state and "block1.0.mlp.dwconv.dwconv.weight" in state
    torch.save(state, tmp_path / "mit_b0.pth")  # the authors' files are plain state dicts
    model = create_model("segformer_b0", num_classes=2, encoder_weights=str(tmp_path / "mit_b0.pth"))
    for key, value in reference.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[key], value), key
    grey = create_model("segformer_b0", num_classes=2, in_channels=1, encoder_weights=str(tmp_path / "mit_b0.pth"))
    first = reference.state_dict()["patch_embed1.proj.weight"]
    torch.testing.assert_close(grey.encoder.patch_embed1.proj.weight, first.sum(1, keepdim=True))
    torch.save({k: v for k, v in state.items() if not k.startswith("block4")}, tmp_path / "partial.pth")
    with pytest.raises(ConfigError, match="missing"):
        create_model("segformer_b0", num_classes=2, encoder_weights=str(tmp_path / "partial.pth"))
    with pytest.raises(ConfigError, match="does not exist"):
        create_model("segformer_b0", num_classes=2, encoder_weights=str(tmp_path / "absent.pth"))


def test_fcn_loads_torchvision_vgg16_with_fc6_fc7_as_convolutions(tmp_path):
    torch.manual_seed(0)
    reference = torchvision.models.vgg16().eval()
    torch.save(reference.state_dict(), tmp_path / "vgg16.pth")
    model = create_model("fcn8s", num_classes=3, encoder_weights=str(tmp_path / "vgg16.pth")).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        pool5 = x
        for stage in model.stages:
            pool5 = model.pool(stage(pool5))
        torch.testing.assert_close(pool5, reference.features(x))
        # on the 7x7 pool5 map, the centre of the 7x7 fc6 convolution sees what the Linear fc6 sees
        fc7 = model.fc7(model.fc6(pool5))[0, :, 3, 3]
        expected = reference.classifier[:5](torch.flatten(reference.features(x), 1))[0]
        torch.testing.assert_close(fc7, expected, atol=1e-5, rtol=1e-4)


def test_segnet_loads_torchvision_vgg16_bn_folding_conv_biases(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    reference = torchvision.models.vgg16_bn().eval()
    for m in reference.modules():  # non-trivial statistics and biases, so a wrong mapping shows
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
        if isinstance(m, nn.Conv2d):
            nn.init.uniform_(m.bias, -0.5, 0.5)
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, tmp_path / "vgg16_bn.safetensors")
    model = create_model("segnet", num_classes=3, encoder_weights=str(tmp_path / "vgg16_bn.safetensors")).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        y = x
        for stage in model.encoder:
            y, _ = model.pool(stage(y))
        torch.testing.assert_close(y, reference.features(x), atol=1e-4, rtol=1e-4)
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "other.pth")
    with pytest.raises(ConfigError, match="not a torchvision VGG16 state dict"):
        create_model("segnet", num_classes=3, encoder_weights=str(tmp_path / "other.pth"))


def test_unet3d_paper_tile_and_overlap_tile():
    model = create_model("unet3d", num_classes=3, in_channels=3, padding="valid").eval()
    assert (model.valid_output_size(132), model.valid_output_size(116)) == (44, 28)
    small = create_model("unet3d", num_classes=2, base_channels=4, depth=2, padding="valid").eval()
    with torch.no_grad():
        assert small(torch.randn(1, 1, 9, 14, 11)).shape == (1, 2, 9, 14, 11)


def test_vnet_stages_are_residual_with_5x5x5_kernels_and_prelu():
    model = create_model("vnet", num_classes=2)
    convs = [len(stage.convs) for stage in model.left] + [len(stage.convs) for stage in model.right]
    assert convs == [1, 2, 3, 3, 3, 3, 3, 2, 1]
    kernels = {m.kernel_size for stage in model.left for m in stage.modules() if isinstance(m, nn.Conv3d)}
    assert kernels == {(5, 5, 5)} and all(isinstance(stage.act, nn.PReLU) for stage in model.left)
    assert [d[0].out_channels for d in model.downs] == [32, 64, 128, 256]
    # the residual of a stage is its input: zeroing the convolutions leaves PReLU(input)
    stage = model.right[-1].eval()
    for m in stage.convs.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.zeros_(m.weight)
        if isinstance(m, nn.BatchNorm3d):
            nn.init.zeros_(m.bias)
    x = torch.rand(1, 32, 4, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(stage(x), x)


def test_3d_models_refuse_images_and_2d_models_refuse_volumes():
    with pytest.raises(ValueError, match=r"\[N, C, D, H, W\]"):
        create_model("vnet", num_classes=2)(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        create_model("unet", num_classes=2, depth=2, base_channels=4)(torch.randn(1, 3, 8, 32, 32))


def test_unetplusplus_on_a_timm_encoder_uses_its_stages_as_levels():
    model = create_model("unetplusplus", num_classes=3, encoder="resnet18", deep_supervision=True).train()
    assert model.depth == 4 and model.size_divisor == 32
    # X[0][4] sees X[0][0..3] (64 channels each, stride 2) and the upsampled X[1][3] (64 channels)
    assert model.nodes["0_4"][0][0].in_channels == 4 * 64 + 64
    logits, aux = model(torch.randn(2, 3, 45, 61), aux=True)
    assert logits.shape == (2, 3, 45, 61) and [a.shape for a in aux] == [(2, 3, 45, 61)] * 3
