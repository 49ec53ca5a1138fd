"""The click simulator and the number-of-clicks metrics on hand-built cases."""

import numpy as np
import pytest

from omniseg.metrics.clicks import Click, click_metrics, clicks_to_reach, mask_iou, next_click, simulate_clicks


def rectangle(top: int, left: int, height: int, width: int, size=(40, 60)) -> np.ndarray:
    mask = np.zeros(size, bool)
    mask[top:top + height, left:left + width] = True
    return mask


def test_the_first_click_is_the_objects_deepest_pixel():
    truth = rectangle(10, 25, 11, 11)  # rows 10-20, columns 25-35: the centre (15, 30) is 6 pixels from outside
    assert next_click(np.zeros_like(truth), truth) == Click(15, 30, True)
    # wider than tall: every pixel of the middle row from column 25 on is as deep; the first one is clicked
    assert next_click(np.zeros((40, 60), bool), rectangle(10, 20, 11, 21)) == Click(15, 25, True)
    # an object on the image border: the border counts as boundary, so the click moves in from it
    assert next_click(np.zeros((40, 60), bool), rectangle(0, 0, 7, 7)) == Click(3, 3, True)


def test_a_larger_false_positive_region_gets_a_negative_click_in_its_middle():
    truth = rectangle(5, 5, 20, 20)
    prediction = truth.copy()
    prediction[5:25, 20:25] = False  # 5 columns missed: 3 pixels deep at most
    prediction |= rectangle(25, 35, 13, 13)  # a 13 x 13 blob of background taken: 7 deep at its centre (31, 41)
    assert next_click(prediction, truth) == Click(31, 41, False)
    prediction &= ~rectangle(25, 35, 13, 13)
    click = next_click(prediction, truth)  # only the missed strip is left: a positive click in it
    assert click.positive and 20 <= click.x < 25 and 5 <= click.y < 25
    ignore = rectangle(5, 20, 20, 5)  # the strip marked as ignored: nothing left to correct but the object itself
    assert next_click(prediction, truth, ignore=ignore).positive and mask_iou(prediction, truth, ignore=ignore) == 1.0


class GrowingModel:
    """A stand-in model whose mask covers more of the object with each click: ``fractions[k]`` of its rows after
    k + 1 clicks; it records the clicks it got."""

    def __init__(self, truth: np.ndarray, fractions: list[float]) -> None:
        self.truth, self.fractions, self.seen = truth, fractions, []

    def __call__(self, clicks: list[Click]) -> np.ndarray:
        self.seen.append(list(clicks))
        rows = np.flatnonzero(self.truth.any(1))
        keep = rows[: round(len(rows) * self.fractions[min(len(clicks), len(self.fractions)) - 1])]
        mask = np.zeros_like(self.truth)
        mask[keep] = self.truth[keep]
        return mask


def test_an_object_reached_in_exactly_three_clicks_and_one_never_reached():
    truth = rectangle(0, 0, 20, 10, size=(20, 10))  # 20 rows: each row is 5% of the object
    reached = GrowingModel(truth, [0.5, 0.8, 0.85, 0.95])  # IoU 0.5, 0.8, 0.85, 0.95 after 1-4 clicks
    ious, clicks = simulate_clicks(reached, truth, max_clicks=20)
    assert ious[:4] == pytest.approx([0.5, 0.8, 0.85, 0.95]) and len(ious) == 20
    assert clicks_to_reach(ious, 0.85) == 3 and clicks_to_reach(ious, 0.9) == 4
    assert all(c.positive for c in clicks)  # only false negatives to correct
    assert clicks[1] == Click(14, 4, True)  # the first deepest pixel of the missed lower half (rows 10-19)
    assert reached.seen[2] == clicks[:3]  # the model is given every click so far
    never = GrowingModel(truth, [0.3, 0.7])
    never_ious, _ = simulate_clicks(never, truth, max_clicks=20)
    table = click_metrics([ious, never_ious], at=(1, 3, 5), max_clicks=20)
    assert table == pytest.approx({"objects": 2, "mIoU@1": 0.4, "mIoU@3": (0.85 + 0.7) / 2, "mIoU@5": (0.95 + 0.7) / 2,
                                   "NoC@85": (3 + 20) / 2, "NoF@85": 1, "NoC@90": (4 + 20) / 2, "NoF@90": 1})


def test_stopping_at_the_target_keeps_the_last_iou_for_the_table():
    truth = rectangle(0, 0, 20, 10, size=(20, 10))
    ious, clicks = simulate_clicks(GrowingModel(truth, [0.5, 0.9]), truth, stop_at=0.9)
    assert ious == pytest.approx([0.5, 0.9]) and len(clicks) == 2
    assert click_metrics([ious], at=(1, 5))["mIoU@5"] == pytest.approx(0.9)
    with pytest.raises(ValueError, match="no objects"):
        click_metrics([])
