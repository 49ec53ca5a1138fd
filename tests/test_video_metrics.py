"""Video metrics: HOTA, CLEAR (MOTSA, sMOTSA, ID switches, fragmentations) and IDF1 equal TrackEval's to 1e-6 on
hand-built and random sequences; DAVIS J&F on hand-computed cases and against TrackEval's J&F."""

import numpy as np
import pytest

from omniseg.metrics.tracking import (TrackSequence, clear_counts, clear_scores, hota_counts, hota_scores, identity_counts,
                                      identity_scores, tracking_scores)
from omniseg.metrics.video_objects import VideoObjectScores, boundary_accuracy, region_similarity, video_object_scores

trackeval = pytest.importorskip("trackeval")


def _trackeval_data(sequence: TrackSequence) -> dict:
    truths, predictions = sequence.detections()
    return {"num_timesteps": sequence.frames, "num_gt_ids": sequence.truth_count, "num_tracker_ids": sequence.predicted_count,
            "num_gt_dets": truths, "num_tracker_dets": predictions, "gt_ids": sequence.truth_ids,
            "tracker_ids": sequence.predicted_ids, "similarity_scores": sequence.similarities}


def _reference(sequences: list[TrackSequence]) -> dict:
    hota = trackeval.metrics.HOTA()
    clear = trackeval.metrics.CLEAR({"PRINT_CONFIG": False})
    identity = trackeval.metrics.Identity({"PRINT_CONFIG": False})
    out = {}
    for metric in (hota, clear, identity):
        out |= metric.combine_sequences({k: metric.eval_sequence(_trackeval_data(s)) for k, s in enumerate(sequences)})
    return out


def _random_sequence(rng: np.random.Generator, frames: int = 15) -> TrackSequence:
    sequence = TrackSequence()
    for _ in range(frames):
        truths = np.sort(rng.choice(5, rng.integers(0, 6), replace=False)) * 7 + 3  # ids need not be 0..N-1
        predictions = np.sort(rng.choice(6, rng.integers(0, 7), replace=False)) * 5 + 1
        similarity = rng.random((len(truths), len(predictions))) * (rng.random((len(truths), len(predictions))) < 0.5)
        sequence.add_frame(truths, predictions, similarity)
    return sequence


def _hand_sequence() -> TrackSequence:
    """Two truth objects over four frames; the tracker swaps ids on frame 2 and misses object 2 on frame 3."""
    sequence = TrackSequence()
    sequence.add_frame([1, 2], [10, 20], [[0.9, 0.0], [0.0, 0.8]])
    sequence.add_frame([1, 2], [10, 20], [[0.7, 0.1], [0.0, 0.6]])
    sequence.add_frame([1, 2], [10, 20], [[0.0, 0.9], [0.8, 0.0]])
    sequence.add_frame([1, 2], [10], [[0.6], [0.0]])
    return sequence


KEYS = [("HOTA", "HOTA"), ("DetA", "DetA"), ("AssA", "AssA"), ("LocA", "LocA"), ("DetRe", "DetRe"), ("AssPr", "AssPr"),
        ("MOTA", "MOTA"), ("sMOTA", "sMOTA"), ("MOTP", "MOTP"), ("IDSW", "IDSW"), ("Frag", "Frag"), ("MT", "MT"), ("ML", "ML"),
        ("IDF1", "IDF1"), ("IDP", "IDP"), ("IDR", "IDR")]


@pytest.mark.parametrize("case", ["hand", "random"])
def test_tracking_metrics_equal_trackeval(case):
    rng = np.random.default_rng(0)
    sequences = [_hand_sequence()] if case == "hand" else [_random_sequence(rng) for _ in range(6)]
    ours, reference = tracking_scores(sequences), _reference(sequences)
    for mine, theirs in KEYS:
        expected = np.mean(reference[theirs]) if np.ndim(reference[theirs]) else reference[theirs]
        assert ours[mine] == pytest.approx(float(expected), abs=1e-6), mine


def test_hand_case_counts():
    """The hand sequence by hand: CLEAR matches 7 of 8 truths (frame 2's swap is an ID switch for both objects, the
    switched-back match on frame 3 a third), one miss; IDF1 pairs 1-10 and 2-20 over 5 of 8 truths and 7 predictions."""
    sequence = _hand_sequence()
    clear = clear_scores([clear_counts(sequence)])
    assert (clear["TP"], clear["FN"], clear["FP"], clear["IDSW"]) == (7, 1, 0, 3)
    assert clear["MOTA"] == pytest.approx((7 - 0 - 3) / 8)
    assert clear["sMOTA"] == pytest.approx((0.9 + 0.8 + 0.7 + 0.6 + 0.9 + 0.8 + 0.6 - 3) / 8)
    identity = identity_scores([identity_counts(sequence)])
    assert (identity["IDTP"], identity["IDFN"], identity["IDFP"]) == (5, 3, 2)
    assert identity["IDF1"] == pytest.approx(5 / (5 + 0.5 * 2 + 0.5 * 3))
    hota = hota_scores([hota_counts(sequence)])
    assert hota["curves"]["DetRe"][0] == pytest.approx(7 / 8) and hota["curves"]["DetPr"][-1] == 0.0


def _square(size: int, top: int, left: int, side: int) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[top:top + side, left:left + side] = True
    return mask


def test_region_and_boundary_by_hand():
    truth, shifted = _square(20, 5, 5, 4), _square(20, 5, 6, 4)
    assert region_similarity(shifted, truth) == pytest.approx(12 / 20)  # 4x3 shared, 4x5 in either
    assert region_similarity(np.zeros((4, 4)), np.zeros((4, 4))) == 1.0
    # DAVIS's tolerance on a 20 x 20 frame is ceil(0.008 * 28.3) = 1 pixel: a 1-pixel shift matches every outline pixel
    assert boundary_accuracy(shifted, truth) == 1.0
    assert boundary_accuracy(_square(20, 5, 8, 4), truth) < 1.0  # 3 pixels away does not
    assert boundary_accuracy(truth, np.zeros_like(truth)) == 0.0
    assert boundary_accuracy(np.zeros_like(truth), np.zeros_like(truth)) == 1.0


def test_j_and_f_statistics_by_hand():
    """One object over 8 frames, perfect on frames 0-3 and missed after: J = F = [1, 1, 1, 1, 0, 0, 0, 0], so mean 0.5,
    recall 0.5, and decay = mean of the first bin (frames 0-2) - mean of the last (frames 5-7) = 1."""
    video = VideoObjectScores()
    truth = _square(32, 8, 8, 10)
    for t in range(8):
        video.add_masks({1: truth}, {1: truth} if t < 4 else {})
    scores = video_object_scores([video])
    assert scores["J-Mean"] == scores["F-Mean"] == scores["J&F"] == pytest.approx(0.5)
    assert scores["J-Recall"] == pytest.approx(0.5) and scores["J-Decay"] == pytest.approx(1.0) and scores["F-Decay"] == pytest.approx(1.0)


def test_j_and_f_equal_trackeval():
    """The unsupervised protocol (each truth matched to one predicted object by mean J) against TrackEval's J&F."""
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(1)
    size, frames = 24, 6
    truth = [{k: _square(size, *rng.integers(0, 16, 2), int(rng.integers(3, 8))) for k in (1, 2) if rng.random() < 0.9} for _ in range(frames)]
    predicted = [{k: _square(size, *rng.integers(0, 16, 2), int(rng.integers(3, 8))) for k in (1, 2, 3) if rng.random() < 0.8} for _ in range(frames)]
    for t in range(frames):  # predictions near the truth now and then
        if 1 in truth[t] and rng.random() < 0.7:
            predicted[t][2] = np.roll(truth[t][1], 1, axis=1)
    ours = VideoObjectScores(match="assignment")
    for t in range(frames):
        ours.add_masks(truth[t], predicted[t])
    mine = video_object_scores([ours])

    def encode(frames_masks, ids):
        return [[mask_utils.encode(np.asfortranarray(f[i].astype(np.uint8))) for i in ids if i in f] for f in frames_masks]

    gt_ids, tr_ids = [1, 2], [1, 2, 3]
    data = {"num_timesteps": frames, "num_gt_ids": 2, "num_tracker_ids": 3,
            "gt_ids": [np.array([gt_ids.index(i) for i in gt_ids if i in f]) for f in truth],
            "tracker_ids": [np.array([tr_ids.index(i) for i in tr_ids if i in f]) for f in predicted],
            "gt_dets": encode(truth, gt_ids), "tracker_dets": encode(predicted, tr_ids)}
    reference = trackeval.metrics.JAndF().eval_sequence(data)
    for key in ("J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay", "J&F"):
        assert mine[key] == pytest.approx(reference[key], abs=1e-6), key
