"""The upsampling layers against the worked examples of the course slides."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from omniseg.models.layers import BedOfNails, Interpolate, MaxUnpool, bilinear_kernel, make_upsample

GRID = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])


def test_transposed_convolution_worked_example():
    x = torch.tensor([[[[2.0, 4.0], [0.0, 1.0]]]])
    kernel = torch.tensor([[[[3.0, 1.0], [1.0, 5.0]]]])
    out = F.conv_transpose2d(x, kernel, stride=1)
    assert out[0, 0].tolist() == [[6, 14, 4], [2, 17, 21], [0, 1, 5]]
    layer = nn.ConvTranspose2d(1, 1, 2, stride=1, bias=False)
    layer.weight.data.copy_(kernel)
    assert torch.equal(layer(x), out)


def test_nearest_and_bed_of_nails():
    assert Interpolate(2, "nearest")(GRID)[0, 0].tolist() == [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    assert BedOfNails(2)(GRID)[0, 0].tolist() == [[1, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]]


def test_max_unpooling_puts_values_back_where_the_maxima_were():
    x = torch.tensor([[[[5.0, 1.0, 0.0, 2.0], [3.0, 0.0, 7.0, 1.0], [0.0, 0.0, 1.0, 0.0], [9.0, 2.0, 3.0, 1.0]]]])
    pooled, indices = nn.MaxPool2d(2, 2, return_indices=True)(x)
    assert pooled[0, 0].tolist() == [[5, 7], [9, 3]]
    out = MaxUnpool(2)(GRID, indices)
    assert out[0, 0].tolist() == [[1, 0, 0, 0], [0, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0]]


def test_bilinear_kernel_makes_transposed_conv_interpolate():
    layer = nn.ConvTranspose2d(3, 3, 4, stride=2, padding=1, bias=False)
    layer.weight.data.copy_(bilinear_kernel(3, 4))
    x = torch.randn(1, 3, 5, 6)
    out = layer(x)
    assert out.shape == (1, 3, 10, 12)
    # away from the border it equals bilinear interpolation (align_corners=False)
    reference = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(out[..., 1:-1, 1:-1], reference[..., 1:-1, 1:-1], atol=1e-5, rtol=1e-5)
    assert bilinear_kernel(1, 4)[0, 0, 0].tolist() == pytest.approx([0.0625, 0.1875, 0.1875, 0.0625])


@pytest.mark.parametrize("mode", ["transposed", "bilinear", "nearest", "bed_of_nails", "pixel_shuffle"])
def test_make_upsample_doubles_the_size(mode):
    layer, channels = make_upsample(mode, 8)
    out = layer(torch.randn(2, 8, 5, 7))
    assert out.shape == (2, channels, 10, 14)
    with pytest.raises(ValueError, match="unknown upsampling"):
        make_upsample("cubic", 8)


def test_max_unpool_matches_torch_and_runs_in_deterministic_mode():
    x = torch.randn(2, 3, 9, 11)
    pooled, indices = nn.MaxPool2d(2, 2, return_indices=True)(x)
    expected = nn.MaxUnpool2d(2, 2)(pooled, indices, output_size=x.shape)
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        out = MaxUnpool(2)(pooled, indices, x.shape)
    finally:
        torch.use_deterministic_algorithms(previous)
    assert torch.equal(out, expected)


def test_init_gives_he_weights_where_no_norm_follows_and_torch_defaults_where_one_does():
    from omniseg.models.layers import ConvNormAct
    from omniseg.models.layers.init import init_weights

    torch.manual_seed(0)
    block = nn.Sequential(ConvNormAct(64, 64), nn.Conv2d(64, 64, 3, padding=1))
    init_weights(block)
    fan_in = 64 * 9
    normed, plain = block[0][0].weight, block[1].weight
    # uniform weights: PyTorch's default bound is 1 / sqrt(fan_in), He's (ReLU gain) sqrt(6 / fan_in)
    assert normed.abs().max() <= fan_in ** -0.5 and normed.abs().max() > 0.95 * fan_in ** -0.5
    assert plain.abs().max() <= (6 / fan_in) ** 0.5 and plain.abs().max() > 0.95 * (6 / fan_in) ** 0.5
    assert block[1].bias.abs().sum() == 0 and torch.equal(block[0][1].weight, torch.ones(64))
