"""Tracking by detection: each frame's detections joined to the tracks so far (the ByteTrack recipe, on masks).

A frame's steps: detections that overlap a surer one (mask IoU above ``nms_iou``, whatever their classes: a detector
often finds one object as two classes) are dropped; every track predicts where it is now (a constant-velocity Kalman filter on its box; its last mask
moved with the box); the confident detections are matched to the active and lost tracks by the Hungarian assignment
on ``1 - IoU`` (the mean of mask and box IoU to the prediction, only above ``match_iou``; classes are not
compared, a track's class is the one its detections gave with the most summed score); a second round gives the tracks still unmatched the low-score detections (ByteTrack: an occluded
object's detection is often weak, and keeping it keeps the track); new tracks are matched next, and unmatched
confident detections start new ones. A new track is reported once it has been seen ``min_hits`` frames in a row (at
once on the first frame); a track missed for more than ``lost_frames`` frames ends, and until then the detection
that matches it takes its id back (re-identification within the lost buffer).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from omniseg.inference.tracking.kalman import BoxKalman
from omniseg.metrics.tracking import box_ious, mask_ious


@dataclass(frozen=True)
class TrackerConfig:
    """``high_score``: detections at or above it are matched first and may start tracks (``birth_score`` and up);
    ``low_score``: weaker ones are dropped, those between are the second round's; ``nms_iou``: the mask IoU above which
    the weaker of two detections is dropped; ``match_iou``: the least IoU of a
    first-round match (``low_match_iou`` of a second-round one); ``mask_weight``: the share of mask IoU in the
    similarity (the rest box IoU); ``motion``: predict with the Kalman filter (else a track stays where it was)."""

    nms_iou: float = 0.5
    high_score: float = 0.5
    low_score: float = 0.1
    birth_score: float = 0.6
    match_iou: float = 0.2
    low_match_iou: float = 0.4
    mask_weight: float = 0.5
    min_hits: int = 2
    lost_frames: int = 30
    motion: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.low_score <= self.high_score <= 1:
            raise ValueError(f"the scores must satisfy 0 <= low_score <= high_score <= 1, got {self.low_score} and {self.high_score}")
        if not 0 <= self.mask_weight <= 1 or self.min_hits < 1 or self.lost_frames < 0:
            raise ValueError("mask_weight is in [0, 1], min_hits >= 1 and lost_frames >= 0")


@dataclass
class Track:
    track_id: int
    label: int
    mask: np.ndarray
    box: np.ndarray
    score: float
    kalman: BoxKalman
    hits: int = 1
    missed: int = 0
    confirmed: bool = False
    predicted_box: np.ndarray = field(default=None)
    predicted_mask: np.ndarray = field(default=None)
    votes: dict = field(default_factory=dict)  # class -> summed detection score

    def vote(self, label: int, score: float) -> None:
        self.votes[label] = self.votes.get(label, 0.0) + score
        self.label = max(self.votes, key=self.votes.get)


def shift_mask(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``mask`` moved by whole pixels, what leaves the frame dropped."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    if abs(dy) >= h or abs(dx) >= w:
        return out
    out[max(dy, 0): h + min(dy, 0), max(dx, 0): w + min(dx, 0)] = mask[max(-dy, 0): h + min(-dy, 0), max(-dx, 0): w + min(-dx, 0)]
    return out


def suppress_duplicates(masks: np.ndarray, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                        iou: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Class-agnostic suppression, surest first: a detection whose mask overlaps a kept one by more than ``iou`` is
    dropped. A detector scores each class of a region apart (softmax), so one object often comes as several classes,
    each with part of the probability: a dropped detection of another class adds its score to the kept one's (up to
    1), which makes the score the object's probability of being any thing rather than one class."""
    order = np.argsort(-scores, kind="stable")
    overlaps = mask_ious(masks[order], masks[order])
    kept: list[int] = []
    fused = scores[order].astype(float)
    classes: dict[int, set] = {}  # kept detection -> the classes whose score it holds
    for k in range(len(order)):
        twin = next((j for j in kept if overlaps[k, j] > iou), None)
        if twin is None:
            kept.append(k)
            classes[k] = {int(labels[order[k]])}
        elif int(labels[order[k]]) not in classes[twin]:  # another class of the same object: its share of the probability
            classes[twin].add(int(labels[order[k]]))
            fused[twin] = min(1.0, fused[twin] + fused[k])
    chosen = order[kept]
    return masks[chosen], boxes[chosen], fused[kept], labels[chosen]


class Tracker:
    """Feed :meth:`update` one frame's detections at a time (``masks`` bool [N, H, W], ``boxes`` XYXY [N, 4],
    ``scores`` [N], ``labels`` [N]); it returns the frame's reported tracks: a list of dicts with ``id``, ``mask``,
    ``box``, ``score`` and ``label``. Ids start at 1 and are never reused."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.tracks: list[Track] = []
        self.next_id = 1
        self.frame = 0

    def _similarity(self, tracks: list[Track], masks: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        if not tracks or not len(masks):
            return np.zeros((len(tracks), len(masks)))
        weight = self.config.mask_weight
        similarity = (1 - weight) * box_ious(np.stack([t.predicted_box for t in tracks]), boxes)
        if weight:
            similarity = similarity + weight * mask_ious(np.stack([t.predicted_mask for t in tracks]), masks)
        return similarity

    @staticmethod
    def _assign(similarity: np.ndarray, threshold: float) -> list[tuple[int, int]]:
        if not similarity.size:
            return []
        rows, cols = linear_sum_assignment(-similarity)
        return [(r, c) for r, c in zip(rows, cols) if similarity[r, c] >= threshold]

    def _predict(self, track: Track) -> None:
        if self.config.motion:
            before = track.kalman.box
            after = track.kalman.predict()
            centre = lambda b: ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)  # noqa: E731
            (x0, y0), (x1, y1) = centre(before), centre(after)
            track.predicted_box = after
            track.predicted_mask = shift_mask(track.mask, int(round(y1 - y0)), int(round(x1 - x0))) if (x1, y1) != (x0, y0) else track.mask
        else:
            track.predicted_box, track.predicted_mask = track.box, track.mask

    def update(self, masks: np.ndarray, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> list[dict]:
        config = self.config
        masks, boxes = np.asarray(masks, bool), np.asarray(boxes, float).reshape(-1, 4)
        scores, labels = np.asarray(scores, float).reshape(-1), np.asarray(labels).reshape(-1)
        first_frame = self.frame == 0
        self.frame += 1
        if len(masks) > 1 and self.config.nms_iou < 1:
            masks, boxes, scores, labels = suppress_duplicates(masks, boxes, scores, labels, self.config.nms_iou)
        for track in self.tracks:
            self._predict(track)
        high = np.flatnonzero(scores >= config.high_score)
        low = np.flatnonzero((scores >= config.low_score) & (scores < config.high_score))
        matched: dict[int, int] = {}  # track index -> detection index

        def match(track_indices: list[int], detection_indices: np.ndarray, threshold: float) -> None:
            if not track_indices or not len(detection_indices):
                return
            chosen = [self.tracks[i] for i in track_indices]
            similarity = self._similarity(chosen, masks[detection_indices], boxes[detection_indices])
            for r, c in self._assign(similarity, threshold):
                matched[track_indices[r]] = int(detection_indices[c])

        established = [i for i, t in enumerate(self.tracks) if t.confirmed]
        match(established, high, config.match_iou)
        # second round: tracks seen on the previous frame and still unmatched take the weak detections
        match([i for i in established if i not in matched and self.tracks[i].missed == 0], low, config.low_match_iou)
        used = set(matched.values())
        match([i for i, t in enumerate(self.tracks) if not t.confirmed], np.array([d for d in high if d not in used], int), config.match_iou)
        used = set(matched.values())
        survivors = []
        for index, track in enumerate(self.tracks):
            if index in matched:
                d = matched[index]
                track.mask, track.box, track.score, track.missed = masks[d], boxes[d], float(scores[d]), 0
                track.vote(int(labels[d]), float(scores[d]))
                track.hits += 1
                track.kalman.update(boxes[d])
                track.confirmed = track.confirmed or track.hits >= config.min_hits
                survivors.append(track)
            elif track.confirmed and track.missed < config.lost_frames:
                track.missed += 1
                track.hits = 0
                track.box, track.mask = track.predicted_box, track.predicted_mask  # carried on by its motion while lost
                survivors.append(track)
            # an unconfirmed track missed once, or a track lost too long, ends
        for d in high:
            if d in used or scores[d] < config.birth_score:
                continue
            track = Track(self.next_id, int(labels[d]), masks[d], boxes[d], float(scores[d]), BoxKalman(boxes[d]),
                          confirmed=first_frame or config.min_hits <= 1, votes={int(labels[d]): float(scores[d])})
            self.next_id += 1
            survivors.append(track)
        self.tracks = survivors
        return [{"id": t.track_id, "mask": t.mask, "box": t.box, "score": t.score, "label": t.label}
                for t in self.tracks if t.confirmed and t.missed == 0]

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict]:
        """The tracker as arrays (masks, boxes, Kalman states) and plain JSON values: what a resumed run loads."""
        arrays = {}
        described = {"next_id": self.next_id, "frame": self.frame, "tracks": []}
        for k, t in enumerate(self.tracks):
            arrays[f"{k}.mask"], arrays[f"{k}.box"] = t.mask, np.asarray(t.box, float)
            arrays[f"{k}.mean"], arrays[f"{k}.covariance"] = t.kalman.mean, t.kalman.covariance
            described["tracks"].append({"id": t.track_id, "label": t.label, "score": t.score, "hits": t.hits, "missed": t.missed,
                                        "confirmed": t.confirmed, "votes": [[k, v] for k, v in t.votes.items()]})
        return arrays, described

    def load_state_dict(self, arrays: dict[str, np.ndarray], described: dict) -> None:
        self.next_id, self.frame, self.tracks = int(described["next_id"]), int(described["frame"]), []
        for k, entry in enumerate(described["tracks"]):
            kalman = BoxKalman(arrays[f"{k}.box"])
            kalman.mean, kalman.covariance = np.array(arrays[f"{k}.mean"]), np.array(arrays[f"{k}.covariance"])
            self.tracks.append(Track(entry["id"], entry["label"], np.array(arrays[f"{k}.mask"], bool), np.array(arrays[f"{k}.box"]),
                                     entry["score"], kalman, hits=entry["hits"], missed=entry["missed"], confirmed=entry["confirmed"],
                                     votes={int(k): float(v) for k, v in entry["votes"]}))
