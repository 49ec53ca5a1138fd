import math

import pytest
import torch

from omniseg.errors import ConfigError
from omniseg.losses import (
    DiceLoss,
    WeightedSumLoss,
    build_loss,
    cross_entropy,
    focal_loss,
    lovasz_softmax_loss,
    median_frequency_weights,
    ohem_cross_entropy,
    soft_dice_loss,
    tversky_loss,
)

ALL = (cross_entropy, focal_loss, soft_dice_loss, tversky_loss, lovasz_softmax_loss, ohem_cross_entropy)


def _two_pixels():
    # pixel 0: target 0, p = (0.25, 0.75); pixel 1: target 1, p = (0.5, 0.5)
    logits = torch.tensor([[0.0, 0.0], [math.log(3), 0.0]]).view(1, 2, 1, 2)
    target = torch.tensor([[[0, 1]]])
    return logits, target


def test_cross_entropy_hand_computed():
    logits, target = _two_pixels()
    assert cross_entropy(logits, target, ignore_index=255).item() == pytest.approx((math.log(4) + math.log(2)) / 2)
    weighted = cross_entropy(logits, target, weight=torch.tensor([2.0, 1.0]), ignore_index=255)
    assert weighted.item() == pytest.approx((2 * math.log(4) + math.log(2)) / 3)
    smooth = cross_entropy(logits[..., :1], target[..., :1], label_smoothing=0.1, ignore_index=255)
    assert smooth.item() == pytest.approx(-(0.95 * math.log(0.25) + 0.05 * math.log(0.75)))


def test_ignore_index_counts_nowhere():
    logits, target = _two_pixels()
    padded_logits = torch.cat([logits, torch.randn(1, 2, 1, 3)], dim=-1)
    padded_target = torch.cat([target, torch.full((1, 1, 3), 255)], dim=-1)
    for fn in ALL:
        assert fn(padded_logits, padded_target, ignore_index=255).item() == pytest.approx(fn(logits, target, ignore_index=255).item())


def test_all_ignored_gives_zero_with_gradient():
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    target = torch.full((1, 4, 4), 255)
    for fn in ALL:
        loss = fn(logits, target, ignore_index=255)
        loss.backward()
        assert loss.item() == 0.0 and logits.grad is not None


def test_focal_hand_computed_and_reduces_to_ce():
    logits, target = _two_pixels()
    expected = (0.75**2 * math.log(4) + 0.5**2 * math.log(2)) / 2
    assert focal_loss(logits, target, gamma=2.0, ignore_index=255).item() == pytest.approx(expected)
    assert focal_loss(logits, target, gamma=0.0, ignore_index=255).item() == pytest.approx(cross_entropy(logits, target, ignore_index=255).item())
    alpha = torch.tensor([0.25, 0.75])
    assert focal_loss(logits, target, gamma=0.0, alpha=alpha, ignore_index=255).item() == pytest.approx(
        (0.25 * math.log(4) + 0.75 * math.log(2)) / 2
    )


def test_dice_hand_computed():
    probs = torch.tensor([[0.8, 0.4], [0.2, 0.6]]).view(1, 2, 1, 2)
    target = torch.tensor([[[0, 1]]])
    dice0, dice1 = 1.6 / 2.2, 1.2 / 1.8
    assert soft_dice_loss(probs.log(), target, ignore_index=255).item() == pytest.approx(1 - (dice0 + dice1) / 2)
    # only class 0 present in the target: class 1 is left out of the mean
    only0 = torch.tensor([[[0, 0]]])
    assert soft_dice_loss(probs.log(), only0, ignore_index=255).item() == pytest.approx(1 - 2 * 1.2 / (1.2 + 2))
    assert DiceLoss(ignore_index=255)(probs.log(), target).item() == pytest.approx(1 - (dice0 + dice1) / 2)


def test_tversky_hand_computed_dice_and_focal():
    probs = torch.tensor([[0.8, 0.4], [0.2, 0.6]]).view(1, 2, 1, 2)
    target = torch.tensor([[[0, 1]]])
    index0, index1 = 0.8 / (0.8 + 0.3 * 0.4 + 0.7 * 0.2), 0.6 / (0.6 + 0.3 * 0.2 + 0.7 * 0.4)  # TP / (TP + a FP + b FN)
    assert tversky_loss(probs.log(), target, ignore_index=255).item() == pytest.approx(1 - (index0 + index1) / 2)
    focal = tversky_loss(probs.log(), target, ignore_index=255, gamma=0.75).item()
    assert focal == pytest.approx(((1 - index0) ** 0.75 + (1 - index1) ** 0.75) / 2)
    halves = tversky_loss(probs.log(), target, ignore_index=255, alpha=0.5, beta=0.5)
    assert halves.item() == pytest.approx(soft_dice_loss(probs.log(), target, ignore_index=255).item())


def test_lovasz_softmax_hand_computed():
    # class 0: errors (0.75 fg, 0.5 bg) -> Jaccard steps (1, 0): 0.75; class 1: errors (0.75 bg, 0.5 fg) -> (0.5, 0.5): 0.625
    logits, target = _two_pixels()
    assert lovasz_softmax_loss(logits, target, ignore_index=255).item() == pytest.approx((0.75 + 0.625) / 2)


def test_ohem_keeps_the_hard_pixels_hand_computed():
    logits, target = _two_pixels()  # true-class probabilities 0.25 and 0.5
    both = (math.log(4) + math.log(2)) / 2
    assert ohem_cross_entropy(logits, target, ignore_index=255, threshold=0.7, min_kept=1).item() == pytest.approx(both)
    assert ohem_cross_entropy(logits, target, ignore_index=255, threshold=0.4, min_kept=1).item() == pytest.approx(math.log(4))
    assert ohem_cross_entropy(logits, target, ignore_index=255, threshold=0.1, min_kept=1).item() == pytest.approx(math.log(4))
    assert ohem_cross_entropy(logits, target, ignore_index=255, threshold=0.1, min_kept=5).item() == pytest.approx(both)
    weighted = ohem_cross_entropy(logits, target, ignore_index=255, min_kept=2, weight=torch.tensor([2.0, 1.0]))
    assert weighted.item() == pytest.approx(cross_entropy(logits, target, weight=torch.tensor([2.0, 1.0]), ignore_index=255).item())


def test_lovasz_and_tversky_match_segmentation_models_pytorch():
    smp_losses = pytest.importorskip("segmentation_models_pytorch.losses")
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 9, 11)
    target = torch.randint(0, 4, (2, 9, 11))
    target[0, :2] = 255
    ours = lovasz_softmax_loss(logits, target, ignore_index=255)
    theirs = smp_losses.LovaszLoss("multiclass", ignore_index=255)(logits, target)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-6)
    ours = tversky_loss(logits, target, ignore_index=255, alpha=0.3, beta=0.7)
    theirs = smp_losses.TverskyLoss("multiclass", ignore_index=255, alpha=0.3, beta=0.7)(logits, target)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-6)


@pytest.mark.parametrize("name", ["ce", "focal", "dice", "ce+dice", "tversky", "focal_tversky", "lovasz", "ohem"])
def test_gradcheck(name):
    torch.manual_seed(0)
    loss = build_loss(name, class_weights=torch.tensor([1.0, 2.0, 0.5]), label_smoothing=0.1, ignore_index=255).double()
    logits = torch.randn(2, 3, 3, 4, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 3, (2, 3, 4))
    target[0, 0, 0] = 255
    assert torch.autograd.gradcheck(lambda x: loss(x, target), (logits,))


def test_loss_spec_parsing():
    combo = build_loss("ce+0.5*dice", ignore_index=255)
    assert isinstance(combo, WeightedSumLoss) and combo.weights == {"ce": 1.0, "dice": 0.5}
    logits, target = _two_pixels()
    expected = cross_entropy(logits, target, ignore_index=255) + 0.5 * soft_dice_loss(logits, target, ignore_index=255)
    assert combo(logits, target).item() == pytest.approx(expected.item())
    with pytest.raises(ConfigError, match="did you mean 'dice'"):
        build_loss("ce+dise", ignore_index=255)
    with pytest.raises(ConfigError, match="not NAME or WEIGHT"):
        build_loss("x*ce", ignore_index=255)


def test_a_void_class_inside_the_class_range_is_ignored_like_255():
    # class 0 is void (ignore_index=0): the loss of [void, 1, 2] pixels equals that of the last two with 255 ignored
    logits = torch.tensor([[[[2.0, 0.5, -1.0]], [[0.0, 1.0, 0.3]], [[1.0, -0.5, 2.0]]]])
    as_void, as_255 = torch.tensor([[[0, 1, 2]]]), torch.tensor([[[255, 1, 2]]])
    for fn in ALL:
        assert fn(logits, as_void, ignore_index=0).item() == pytest.approx(fn(logits, as_255, ignore_index=255).item())
    # by hand: cross entropy of pixel 1 (class 1) and pixel 2 (class 2)
    log_p = logits.log_softmax(1)[0, :, 0]
    assert cross_entropy(logits, as_void, ignore_index=0).item() == pytest.approx(-(log_p[1, 1] + log_p[2, 2]).item() / 2)


def test_median_frequency_weights():
    # freq = (30/40, 10/40, 10/20) = (0.75, 0.25, 0.5); median 0.5
    weights = median_frequency_weights(torch.tensor([30, 10, 10]), torch.tensor([40, 40, 20]))
    assert weights.tolist() == pytest.approx([0.5 / 0.75, 2.0, 1.0])
    assert median_frequency_weights(torch.tensor([5, 0]), torch.tensor([10, 0])).tolist() == [1.0, 0.0]


def test_losses_do_not_modify_inputs():
    logits, target = _two_pixels()
    before_l, before_t = logits.clone(), target.clone()
    for fn in ALL:
        fn(logits, target, ignore_index=255)
    assert torch.equal(logits, before_l) and torch.equal(target, before_t)


def test_vnet_dice_hand_computed_on_a_volume():
    # V-Net: D = 2 sum p g / (sum p^2 + sum g^2) over the foreground; 2 voxels of class 1 out of 4
    p1 = torch.tensor([0.9, 0.6, 0.2, 0.1]).view(1, 1, 1, 2, 2)
    logits = torch.cat([1 - p1, p1], dim=1).log()
    target = torch.tensor([1, 1, 0, 0]).view(1, 1, 2, 2)
    dice = 2 * (0.9 + 0.6) / ((0.81 + 0.36 + 0.04 + 0.01) + 2)
    assert build_loss("vnet_dice", ignore_index=255)(logits, target).item() == pytest.approx(1 - dice, rel=1e-5)
    # the plain soft Dice of the same volume, both classes: squares are not taken
    fg = 2 * 1.5 / (1.8 + 2)
    bg = 2 * (0.8 + 0.9) / (2.2 + 2)
    assert soft_dice_loss(logits, target, ignore_index=255).item() == pytest.approx(1 - (fg + bg) / 2, rel=1e-5)
