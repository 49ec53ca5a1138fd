"""RoIAlign as matrix products: parity with torchvision's operator (values and gradients), a hand-computed
bin, the multi-scale pooler, and the fall-back to torchvision's operator for large maps."""

import pytest
import torch
from torchvision.ops import MultiScaleRoIAlign as TorchvisionMultiScaleRoIAlign
from torchvision.ops import roi_align as torchvision_roi_align

from omniseg.models.instance import roi_align as module
from omniseg.models.instance.roi_align import MultiScaleRoIAlign, roi_align


def _rois(count, images, size, generator):
    image = torch.randint(0, images, (count, 1), generator=generator).float()
    corner = torch.rand(count, 2, generator=generator) * size * 1.1 - size * 0.1  # some start outside the image
    extent = torch.rand(count, 2, generator=generator) * size * 0.6 + 0.2
    return torch.cat([image, corner, corner + extent], 1)  # image indices unsorted


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
@pytest.mark.parametrize("output_size", [(7, 7), (14, 5)])
def test_roi_align_matches_torchvision_values_and_gradients(aligned, sampling_ratio, output_size):
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(3, 4, 13, 17, generator=generator, requires_grad=True)
    rois = _rois(40, 3, 60, generator)
    expected = torchvision_roi_align(features, rois, output_size, 0.25, sampling_ratio, aligned)
    got = roi_align(features, rois, output_size, 0.25, sampling_ratio, aligned)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    upstream = torch.randn(expected.shape, generator=generator)
    (grad_expected,) = torch.autograd.grad((expected * upstream).sum(), features)
    (grad_got,) = torch.autograd.grad((got * upstream).sum(), features)
    torch.testing.assert_close(grad_got, grad_expected, rtol=0, atol=1e-4)


def test_roi_align_averages_the_bilinear_samples_of_a_bin():
    # a 1x1 bin over the map x + 10 y, sampled 2x2 at x in {0.5, 1.5}, y in {0.5, 1.5}: the mean is 1 + 10 = 11
    features = (torch.arange(4.0)[None, :] + 10 * torch.arange(4.0)[:, None])[None, None]
    out = roi_align(features, torch.tensor([[0.0, 0.0, 0.0, 2.0, 2.0]]), (1, 1), 1.0, 2)
    assert out.item() == pytest.approx(11.0)
    # a box entirely beyond the map samples nothing
    assert roi_align(features, torch.tensor([[0.0, 9.0, 9.0, 12.0, 12.0]]), (2, 2), 1.0, 2).abs().sum() == 0


def test_multiscale_pooler_matches_torchvision_and_large_maps_use_its_operator(monkeypatch):
    generator = torch.Generator().manual_seed(1)
    features = {str(level): torch.randn(2, 8, 64 // 2**level, 64 // 2**level, generator=generator) for level in range(3)}
    boxes = [_rois(30, 1, 256, generator)[:, 1:].clamp(0, 256) + torch.tensor([0.0, 0.0, 1.0, 1.0]) for _ in range(2)]
    ours, theirs = MultiScaleRoIAlign(["0", "1", "2"], 7, 0), TorchvisionMultiScaleRoIAlign(["0", "1", "2"], 7, 0)
    shapes = [(256, 256)] * 2
    torch.testing.assert_close(ours(features, boxes, shapes), theirs(features, boxes, shapes), rtol=0, atol=1e-5)
    calls = []
    monkeypatch.setattr(module, "_torchvision_roi_align", lambda *args: calls.append(args) or torchvision_roi_align(*args))
    monkeypatch.setattr(module, "MAX_INTERMEDIATE", 1000)
    torch.testing.assert_close(ours(features, boxes, shapes), theirs(features, boxes, shapes), rtol=0, atol=1e-5)
    assert len(calls) == 3  # each level's product would exceed the limit
    assert roi_align(features["0"], torch.zeros(0, 5), (7, 7), 0.25, 0).shape == (0, 8, 7, 7)
