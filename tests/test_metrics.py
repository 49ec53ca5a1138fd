import math

import numpy as np
import pytest
import torch

from omniseg.metrics import ConfusionMatrix, metrics_from_confusion, metrics_report

torchmetrics = pytest.importorskip("torchmetrics")


def _hand_case():
    target = torch.tensor([0, 0, 1, 1, 2, 255])
    pred = torch.tensor([0, 1, 1, 1, 0, 2])  # the last pixel is ignored
    return pred, target


def test_hand_computed_case():
    cm = ConfusionMatrix(3, ignore_index=255)
    cm.update(*_hand_case())
    assert cm.matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    m = cm.compute()
    assert m["per_class_iou"] == pytest.approx([1 / 3, 2 / 3, 0.0])
    assert m["per_class_dice"] == pytest.approx([0.5, 0.8, 0.0])
    assert m["per_class_accuracy"] == pytest.approx([0.5, 1.0, 0.0])
    assert m["miou"] == pytest.approx(1 / 3)
    assert m["mean_dice"] == pytest.approx(1.3 / 3)
    assert m["pixel_accuracy"] == pytest.approx(0.6)
    assert m["mean_accuracy"] == pytest.approx(0.5)
    assert m["fwiou"] == pytest.approx(0.4 * 1 / 3 + 0.4 * 2 / 3)


def test_absent_class_is_nan_by_default_and_switchable():
    pred, target = _hand_case()
    for score, expected in (("nan", 1 / 3), (1, (1 / 3 + 2 / 3 + 0 + 1) / 4), (0, 1 / 4)):
        cm = ConfusionMatrix(4, ignore_index=255, absent_score=score)
        cm.update(pred, target)
        m = cm.compute()
        assert m["miou"] == pytest.approx(expected)
        if score == "nan":
            assert math.isnan(m["per_class_iou"][3]) and math.isnan(m["per_class_dice"][3])


def test_jaccard_of_half_overlap():  # the SMP docs' example: [1,1,1,1] vs [1,1,0,0]
    cm = ConfusionMatrix(2, ignore_index=None)
    cm.update(torch.tensor([1, 1, 0, 0]), torch.tensor([1, 1, 1, 1]))
    assert cm.compute()["per_class_iou"][1] == pytest.approx(0.5)


def test_streaming_equals_one_pass_and_merge():
    g = torch.Generator().manual_seed(0)
    pred = torch.randint(0, 5, (4, 30, 30), generator=g)
    target = torch.randint(0, 6, (4, 30, 30), generator=g)
    target[target == 5] = 255
    whole, parts, merged = (ConfusionMatrix(5, ignore_index=255) for _ in range(3))
    whole.update(pred, target)
    for i in range(4):
        parts.update(pred[i], target[i])
    half = ConfusionMatrix(5, ignore_index=255)
    half.update(pred[:2], target[:2])
    merged.update(pred[2:], target[2:])
    merged.merge(half)
    assert torch.equal(whole.matrix, parts.matrix) and torch.equal(whole.matrix, merged.matrix)


def test_labels_out_of_range_raise():
    cm = ConfusionMatrix(3, ignore_index=255)
    with pytest.raises(ValueError, match="target label 7"):
        cm.update(torch.tensor([0]), torch.tensor([7]))
    with pytest.raises(ValueError, match="prediction label 3"):
        cm.update(torch.tensor([3]), torch.tensor([0]))
    with pytest.raises(ValueError, match="shape"):
        cm.update(torch.tensor([0, 1]), torch.tensor([0]))


@pytest.mark.parametrize("case", range(50))
def test_parity_with_torchmetrics(case):
    from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score, MulticlassJaccardIndex, MulticlassRecall

    g = torch.Generator().manual_seed(case)
    k = int(torch.randint(2, 8, (1,), generator=g))
    shape = (int(torch.randint(1, 4, (1,), generator=g)), int(torch.randint(5, 40, (1,), generator=g)), 17)
    target = torch.randint(0, k, shape, generator=g)
    # predictions agree with the truth ~60% of the time, so scores are not all near chance
    pred = torch.where(torch.rand(shape, generator=g) < 0.6, target, torch.randint(0, k, shape, generator=g))
    target[torch.rand(shape, generator=g) < 0.15] = 255
    cm = ConfusionMatrix(k, ignore_index=255)
    cm.update(pred, target)
    m = cm.compute()
    iou = MulticlassJaccardIndex(k, average=None, ignore_index=255)(pred, target).numpy()
    dice = MulticlassF1Score(k, average=None, ignore_index=255)(pred, target).numpy()
    recall = MulticlassRecall(k, average=None, ignore_index=255)(pred, target).numpy()
    pixel = MulticlassAccuracy(k, average="micro", ignore_index=255)(pred, target).item()
    present = ~np.isnan(np.array(m["per_class_iou"]))
    np.testing.assert_allclose(np.array(m["per_class_iou"])[present], iou[present], atol=1e-6)
    np.testing.assert_allclose(np.array(m["per_class_dice"])[present], dice[present], atol=1e-6)
    has_support = np.array(m["support"]) > 0
    np.testing.assert_allclose(np.array(m["per_class_accuracy"])[has_support], recall[has_support], atol=1e-6)
    assert m["pixel_accuracy"] == pytest.approx(pixel, abs=1e-6)
    assert m["miou"] == pytest.approx(iou[present].mean(), abs=1e-6)


def test_report_shape_and_nan_as_null():
    cm = ConfusionMatrix(3, ignore_index=255)
    cm.update(torch.tensor([0, 1]), torch.tensor([0, 1]))
    report = metrics_report(cm.matrix, ["a", "b", "c"], ignore_index=255)
    assert set(report) == {"pixel_accuracy", "mean_accuracy", "miou", "fwiou", "mean_dice", "per_class"}
    assert report["per_class"][2] == {"name": "c", "iou": None, "dice": None, "accuracy": None, "support": 0}
    assert report["miou"] == 1.0
    assert math.isnan(metrics_from_confusion(np.zeros((2, 2)), ignore_index=None)["pixel_accuracy"])
