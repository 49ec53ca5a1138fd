"""Multi-object tracking metrics on masks (or boxes): HOTA (DetA, AssA, LocA over the localisation thresholds
alpha = 0.05 .. 0.95), CLEAR MOT (MOTA / MOTSA on masks, MOTP, sMOTSA, ID switches, fragmentations, mostly tracked /
lost) and the identity measures (IDF1, IDP, IDR).

The definitions are those of the papers as TrackEval implements them (Luiten et al. 2020 for HOTA, Bernardin &
Stiefelhagen 2008 for CLEAR, Voigtlaender et al. 2019 for MOTSA / sMOTSA, Ristani et al. 2016 for IDF1), so the
figures equal TrackEval's: a test compares them. A video is a :class:`TrackSequence`, filled frame by frame (only
the ids and the ``[truths, predictions]`` similarity of each frame are kept, never masks); several videos are
combined as TrackEval combines sequences (counts summed, association scores weighted by true positives).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

ALPHAS = np.arange(0.05, 0.99, 0.05)
EPS = np.finfo(float).eps


def mask_ious(truths: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """IoU of every truth mask ``[N, H, W]`` with every predicted mask ``[M, H, W]`` (bool): ``[N, M]``; two empty
    masks have IoU 0."""
    if not len(truths) or not len(predictions):
        return np.zeros((len(truths), len(predictions)))
    truths = np.asarray(truths, bool).reshape(len(truths), -1).astype(np.float32)
    predictions = np.asarray(predictions, bool).reshape(len(predictions), -1).astype(np.float32)
    intersection = truths @ predictions.T
    union = truths.sum(1)[:, None] + predictions.sum(1)[None, :] - intersection
    return np.where(union > 0, intersection / np.maximum(union, 1), 0.0).astype(np.float64)


def box_ious(truths: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """IoU of XYXY boxes ``[N, 4]`` x ``[M, 4]``: ``[N, M]`` (torchvision's, two empty boxes 0)."""
    import torch
    from torchvision.ops import box_iou

    a = torch.as_tensor(np.asarray(truths, np.float64).reshape(-1, 4))
    b = torch.as_tensor(np.asarray(predictions, np.float64).reshape(-1, 4))
    return box_iou(a, b).nan_to_num(0.0).numpy()


class TrackSequence:
    """One video's truth and predicted tracks, frame by frame: :meth:`add_frame` with each frame's object ids and the
    similarity (IoU) of every truth to every prediction, or :meth:`add_masks` with the masks themselves. Ids are any
    integers; an id is one track through the whole video."""

    def __init__(self) -> None:
        self.truth_ids: list[np.ndarray] = []
        self.predicted_ids: list[np.ndarray] = []
        self.similarities: list[np.ndarray] = []
        self._truth_index: dict[int, int] = {}
        self._predicted_index: dict[int, int] = {}

    def add_frame(self, truth_ids: Sequence[int], predicted_ids: Sequence[int], similarity: np.ndarray) -> None:
        similarity = np.asarray(similarity, float).reshape(len(truth_ids), len(predicted_ids))
        for ids, index in ((truth_ids, self._truth_index), (predicted_ids, self._predicted_index)):
            if len(set(int(i) for i in ids)) != len(ids):
                raise ValueError(f"a frame holds one id twice: {list(ids)}; an id is one object")
            for i in ids:
                index.setdefault(int(i), len(index))
        self.truth_ids.append(np.array([self._truth_index[int(i)] for i in truth_ids], int))
        self.predicted_ids.append(np.array([self._predicted_index[int(i)] for i in predicted_ids], int))
        self.similarities.append(similarity)

    def add_masks(self, truth_ids: Sequence[int], truth_masks: np.ndarray, predicted_ids: Sequence[int], predicted_masks: np.ndarray) -> None:
        self.add_frame(truth_ids, predicted_ids, mask_ious(truth_masks, predicted_masks))

    @property
    def frames(self) -> int:
        return len(self.truth_ids)

    @property
    def truth_count(self) -> int:
        return len(self._truth_index)

    @property
    def predicted_count(self) -> int:
        return len(self._predicted_index)

    def detections(self) -> tuple[int, int]:
        return sum(len(i) for i in self.truth_ids), sum(len(i) for i in self.predicted_ids)


# ----------------------------------------------------------------------------------------------------------- HOTA

def hota_counts(sequence: TrackSequence) -> dict[str, np.ndarray]:
    """HOTA's per-alpha counts of one video: TP, FN, FP, the association sums (AssA, AssRe, AssPr weighted by TP) and
    the localisation sum."""
    alphas = len(ALPHAS)
    counts = {name: np.zeros(alphas) for name in ("TP", "FN", "FP", "AssA", "AssRe", "AssPr", "Loc")}
    truth_dets, predicted_dets = sequence.detections()
    if predicted_dets == 0 or truth_dets == 0:
        counts["FN"][:], counts["FP"][:] = truth_dets, predicted_dets
        return counts
    n_truth, n_pred = sequence.truth_count, sequence.predicted_count
    # global alignment: how much each truth track and each predicted track overlap over the whole video
    potential = np.zeros((n_truth, n_pred))
    truth_frames, predicted_frames = np.zeros((n_truth, 1)), np.zeros((1, n_pred))
    for truth_ids, predicted_ids, similarity in zip(sequence.truth_ids, sequence.predicted_ids, sequence.similarities):
        denominator = similarity.sum(0)[None, :] + similarity.sum(1)[:, None] - similarity
        share = np.zeros_like(similarity)
        positive = denominator > EPS
        share[positive] = similarity[positive] / denominator[positive]
        potential[truth_ids[:, None], predicted_ids[None, :]] += share
        truth_frames[truth_ids] += 1
        predicted_frames[0, predicted_ids] += 1
    alignment = potential / (truth_frames + predicted_frames - potential)
    matches = np.zeros((alphas, n_truth, n_pred))
    for truth_ids, predicted_ids, similarity in zip(sequence.truth_ids, sequence.predicted_ids, sequence.similarities):
        if not len(truth_ids) or not len(predicted_ids):
            counts["FP"] += len(predicted_ids)
            counts["FN"] += len(truth_ids)
            continue
        rows, cols = linear_sum_assignment(-(alignment[truth_ids[:, None], predicted_ids[None, :]] * similarity))
        for a, alpha in enumerate(ALPHAS):
            kept = similarity[rows, cols] >= alpha - EPS
            matched = int(kept.sum())
            counts["TP"][a] += matched
            counts["FN"][a] += len(truth_ids) - matched
            counts["FP"][a] += len(predicted_ids) - matched
            if matched:
                counts["Loc"][a] += similarity[rows[kept], cols[kept]].sum()
                matches[a, truth_ids[rows[kept]], predicted_ids[cols[kept]]] += 1
    for a in range(alphas):
        m = matches[a]
        counts["AssA"][a] = np.sum(m * m / np.maximum(1, truth_frames + predicted_frames - m))
        counts["AssRe"][a] = np.sum(m * m / np.maximum(1, truth_frames))
        counts["AssPr"][a] = np.sum(m * m / np.maximum(1, predicted_frames))
    return counts


def hota_scores(counts: Iterable[Mapping[str, np.ndarray]]) -> dict[str, float | list[float]]:
    """HOTA, DetA, AssA, DetRe, DetPr, AssRe, AssPr, LocA (means over alpha) and the per-alpha curves, from the counts of
    one or more videos (summed: TrackEval's combination of sequences)."""
    total = {name: np.zeros(len(ALPHAS)) for name in ("TP", "FN", "FP", "AssA", "AssRe", "AssPr", "Loc")}
    for c in counts:
        for name in total:
            total[name] = total[name] + c[name]
    tp, fn, fp = total["TP"], total["FN"], total["FP"]
    curves = {"DetRe": tp / np.maximum(1, tp + fn), "DetPr": tp / np.maximum(1, tp + fp), "DetA": tp / np.maximum(1, tp + fn + fp),
              "AssA": total["AssA"] / np.maximum(1, tp), "AssRe": total["AssRe"] / np.maximum(1, tp),
              "AssPr": total["AssPr"] / np.maximum(1, tp),
              # no match at all: localisation is perfect by convention (as TrackEval's empty cases)
              "LocA": np.where(tp > 0, np.maximum(1e-10, total["Loc"]) / np.maximum(1e-10, tp), 1.0)}
    curves["HOTA"] = np.sqrt(curves["DetA"] * curves["AssA"])
    scores: dict[str, float | list[float]] = {name: float(values.mean()) for name, values in curves.items()}
    scores["HOTA(0)"] = float(curves["HOTA"][0])
    scores["LocA(0)"] = float(curves["LocA"][0])
    scores["curves"] = {name: values.tolist() for name, values in curves.items()} | {"alpha": ALPHAS.tolist()}
    return scores


# ---------------------------------------------------------------------------------------------------------- CLEAR

def clear_counts(sequence: TrackSequence, *, threshold: float = 0.5) -> dict[str, float]:
    """CLEAR MOT counts of one video at IoU ``threshold``: TP, FN, FP, IDSW, Frag, MT, PT, ML and the summed IoU of the
    matches. A truth keeps its previous frame's prediction when they still overlap enough (the CLEAR rule)."""
    counts = dict.fromkeys(("TP", "FN", "FP", "IDSW", "Frag", "MT", "PT", "ML", "IoU_sum"), 0.0)
    truth_dets, predicted_dets = sequence.detections()
    if predicted_dets == 0 or truth_dets == 0:
        counts["FN"], counts["FP"], counts["ML"] = truth_dets, predicted_dets, sequence.truth_count if predicted_dets == 0 else 0
        return counts
    n_truth = sequence.truth_count
    seen, tracked, fragments = np.zeros(n_truth), np.zeros(n_truth), np.zeros(n_truth)
    last_match = np.full(n_truth, np.nan)  # the last prediction each truth was matched to (ID switches)
    previous = np.full(n_truth, np.nan)  # the prediction matched on the previous frame (kept when possible)
    for truth_ids, predicted_ids, similarity in zip(sequence.truth_ids, sequence.predicted_ids, sequence.similarities):
        if not len(truth_ids):
            counts["FP"] += len(predicted_ids)
            continue
        if not len(predicted_ids):
            counts["FN"] += len(truth_ids)
            seen[truth_ids] += 1
            continue
        score = 1000 * (predicted_ids[None, :] == previous[truth_ids][:, None]) + similarity
        score[similarity < threshold - EPS] = 0
        rows, cols = linear_sum_assignment(-score)
        kept = score[rows, cols] > EPS
        rows, cols = rows[kept], cols[kept]
        matched_truths, matched_predictions = truth_ids[rows], predicted_ids[cols]
        before = last_match[matched_truths]
        counts["IDSW"] += int(np.sum(~np.isnan(before) & (matched_predictions != before)))
        seen[truth_ids] += 1
        tracked[matched_truths] += 1
        was_untracked = np.isnan(previous)
        last_match[matched_truths] = matched_predictions
        previous[:] = np.nan
        previous[matched_truths] = matched_predictions
        fragments += was_untracked & ~np.isnan(previous)
        counts["TP"] += len(rows)
        counts["FN"] += len(truth_ids) - len(rows)
        counts["FP"] += len(predicted_ids) - len(rows)
        counts["IoU_sum"] += float(similarity[rows, cols].sum())
    ratio = tracked[seen > 0] / seen[seen > 0]
    counts["MT"] = int(np.sum(ratio > 0.8))
    counts["PT"] = int(np.sum(ratio >= 0.2)) - counts["MT"]
    counts["ML"] = n_truth - counts["MT"] - counts["PT"]
    counts["Frag"] = float(np.sum(fragments[fragments > 0] - 1))
    return counts


def clear_scores(counts: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """MOTA (MOTSA when the similarity is mask IoU), MOTP, MODA, sMOTA (sMOTSA), recall, precision, ID switches,
    fragmentations and mostly tracked / partly / lost, from one or more videos' counts."""
    c = dict.fromkeys(("TP", "FN", "FP", "IDSW", "Frag", "MT", "PT", "ML", "IoU_sum"), 0.0)
    for counted in counts:
        for name in c:
            c[name] += counted[name]
    truths = max(1.0, c["TP"] + c["FN"])
    tracks = max(1.0, c["MT"] + c["PT"] + c["ML"])
    return {"MOTA": (c["TP"] - c["FP"] - c["IDSW"]) / truths, "MODA": (c["TP"] - c["FP"]) / truths,
            "MOTP": c["IoU_sum"] / max(1.0, c["TP"]), "sMOTA": (c["IoU_sum"] - c["FP"] - c["IDSW"]) / truths,
            "recall": c["TP"] / truths, "precision": c["TP"] / max(1.0, c["TP"] + c["FP"]),
            "TP": int(c["TP"]), "FN": int(c["FN"]), "FP": int(c["FP"]), "IDSW": int(c["IDSW"]), "Frag": int(c["Frag"]),
            "MT": int(c["MT"]), "PT": int(c["PT"]), "ML": int(c["ML"]),
            "MTR": c["MT"] / tracks, "PTR": c["PT"] / tracks, "MLR": c["ML"] / tracks}


# ------------------------------------------------------------------------------------------------------- identity

def identity_counts(sequence: TrackSequence, *, threshold: float = 0.5) -> dict[str, float]:
    """IDTP, IDFN, IDFP of one video: the one-to-one matching of whole truth and predicted tracks that maximises the
    frames they share (IoU >= ``threshold``), unmatched tracks counting all their frames as misses / false alarms."""
    truth_dets, predicted_dets = sequence.detections()
    if predicted_dets == 0 or truth_dets == 0:
        return {"IDTP": 0, "IDFN": truth_dets, "IDFP": predicted_dets}
    n_truth, n_pred = sequence.truth_count, sequence.predicted_count
    shared = np.zeros((n_truth, n_pred))
    truth_frames, predicted_frames = np.zeros(n_truth), np.zeros(n_pred)
    for truth_ids, predicted_ids, similarity in zip(sequence.truth_ids, sequence.predicted_ids, sequence.similarities):
        rows, cols = np.nonzero(similarity >= threshold)
        shared[truth_ids[rows], predicted_ids[cols]] += 1
        truth_frames[truth_ids] += 1
        predicted_frames[predicted_ids] += 1
    # square problem: truth tracks x (predicted tracks + one "unmatched" slot per truth), and the transposed part
    size = n_truth + n_pred
    misses, false_alarms = np.zeros((size, size)), np.zeros((size, size))
    false_alarms[n_truth:, :n_pred] = 1e10
    misses[:n_truth, n_pred:] = 1e10
    for t in range(n_truth):
        misses[t, :n_pred] = truth_frames[t]
        misses[t, n_pred + t] = truth_frames[t]
    for p in range(n_pred):
        false_alarms[:n_truth, p] = predicted_frames[p]
        false_alarms[p + n_truth, p] = predicted_frames[p]
    misses[:n_truth, :n_pred] -= shared
    false_alarms[:n_truth, :n_pred] -= shared
    rows, cols = linear_sum_assignment(misses + false_alarms)
    idfn = int(misses[rows, cols].sum())
    idfp = int(false_alarms[rows, cols].sum())
    return {"IDTP": int(truth_frames.sum()) - idfn, "IDFN": idfn, "IDFP": idfp}


def identity_scores(counts: Iterable[Mapping[str, float]]) -> dict[str, float]:
    total = {"IDTP": 0, "IDFN": 0, "IDFP": 0}
    for c in counts:
        for name in total:
            total[name] += c[name]
    tp, fn, fp = total["IDTP"], total["IDFN"], total["IDFP"]
    return {"IDF1": tp / max(1.0, tp + 0.5 * fp + 0.5 * fn), "IDR": tp / max(1.0, tp + fn), "IDP": tp / max(1.0, tp + fp)} | total


def tracking_scores(sequences: Sequence[TrackSequence], *, threshold: float = 0.5) -> dict:
    """HOTA, CLEAR and identity scores of one or more videos together (``threshold``: CLEAR's and IDF1's IoU)."""
    hota = hota_scores(hota_counts(s) for s in sequences)
    clear = clear_scores(clear_counts(s, threshold=threshold) for s in sequences)
    identity = identity_scores(identity_counts(s, threshold=threshold) for s in sequences)
    return hota | clear | identity
