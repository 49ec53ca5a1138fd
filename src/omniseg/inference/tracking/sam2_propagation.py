"""Detect and track with Segment Anything 2's memory (``omniseg track RUN VIDEO --propagate sam2 --model SAM2``).

The detector finds objects and the SAM 2 video predictor carries them: each frame, SAM 2 first follows every object
it holds to the frame from its memory; the confident detections are matched to those masks (Hungarian assignment on
mask IoU, above ``match_iou``; classes are voted as in the plain tracker); a confident detection that matches none
and overlaps no carried mask by more than ``match_iou`` starts a new object, prompted to SAM 2 with its mask. So an
object keeps its mask, and its id, through frames where the detector misses it (occlusion, blur) for as long as SAM 2
still sees it; one that neither SAM 2 nor the detector has seen for ``lost_frames`` frames is dropped, with its memory.

Memory stays bounded: each object holds one prompted frame (its first) and SAM 2's window of recent memories.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from omniseg.inference.tracking.association import TrackerConfig, suppress_duplicates
from omniseg.metrics.tracking import mask_ious


class Sam2Propagation:
    """``update(frame, masks, boxes, scores, labels)`` with each frame's detections, in order, returns the frame's
    objects (dicts with ``id``, ``mask``, ``box``, ``score``, ``label``), as :class:`~omniseg.inference.tracking.
    association.Tracker` does."""

    def __init__(self, model, frames, config: TrackerConfig | None = None, *, device: str | None = None) -> None:
        from omniseg.inference.promptable.video_predictor import VideoPredictor

        self.config = config or TrackerConfig()
        self.video = VideoPredictor(model, device=device).start(frames)
        self.next_id = 1
        self.unseen: dict[int, int] = {}  # object -> frames in a row that neither SAM 2 nor the detector saw it
        self.votes: dict[int, dict[int, float]] = {}
        self.scores: dict[int, float] = {}

    def update(self, frame: int, masks: np.ndarray, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> list[dict]:
        config = self.config
        masks, boxes = np.asarray(masks, bool), np.asarray(boxes, float).reshape(-1, 4)
        scores, labels = np.asarray(scores, float).reshape(-1), np.asarray(labels).reshape(-1)
        if len(masks) > 1 and config.nms_iou < 1:
            masks, boxes, scores, labels = suppress_duplicates(masks, boxes, scores, labels, config.nms_iou)
        confident = np.flatnonzero(scores >= config.high_score)
        ids, carried = [], np.zeros((0, *masks.shape[1:]), bool)
        if self.video.objects:
            _, ids, carried = next(iter(self.video.propagate(start=frame, max_frames=1)))
        overlap = mask_ious(carried, masks[confident]) if len(confident) else np.zeros((len(ids), 0))
        matched: dict[int, int] = {}
        if overlap.size:
            rows, cols = linear_sum_assignment(-overlap)
            matched = {ids[r]: int(confident[c]) for r, c in zip(rows, cols) if overlap[r, c] >= config.match_iou}
        current = {obj_id: mask for obj_id, mask in zip(ids, carried)}
        for obj_id in list(ids):
            if obj_id in matched:
                d = matched[obj_id]
                self.votes[obj_id][int(labels[d])] = self.votes[obj_id].get(int(labels[d]), 0.0) + float(scores[d])
                self.scores[obj_id] = float(scores[d])
                self.unseen[obj_id] = 0
            elif current[obj_id].any():
                self.unseen[obj_id] = 0  # SAM 2 still sees it: carried over the detector's miss
            else:
                self.unseen[obj_id] += 1
                if self.unseen[obj_id] > config.lost_frames:
                    self.video.remove_object(obj_id)
                    current.pop(obj_id)
                    for table in (self.unseen, self.votes, self.scores):
                        table.pop(obj_id, None)
        used = set(matched.values())
        covered = overlap.max(0) if overlap.size else np.zeros(len(confident))
        for k, d in enumerate(confident):
            if d in used or scores[d] < config.birth_score or covered[k] > config.match_iou:
                continue
            obj_id, self.next_id = self.next_id, self.next_id + 1
            self.video.add_prompt(frame, obj_id, mask=masks[d])
            current[obj_id] = masks[d]
            self.votes[obj_id], self.scores[obj_id], self.unseen[obj_id] = {int(labels[d]): float(scores[d])}, float(scores[d]), 0
        reported = []
        for obj_id, mask in current.items():
            if not mask.any():
                continue
            ys, xs = np.nonzero(mask)
            reported.append({"id": obj_id, "mask": mask, "box": np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float),
                             "score": self.scores[obj_id], "label": max(self.votes[obj_id], key=self.votes[obj_id].get)})
        return reported

    def state_dict(self) -> tuple[dict, dict]:
        """Arrays (bfloat16 memories as float32, exactly) and JSON values: what a resumed run loads."""
        import torch

        tensors, described = self.video.state_dict()
        halved = sorted(name for name, value in tensors.items() if value.dtype == torch.bfloat16)
        return ({f"sam2.{name}": value.float().cpu().numpy() for name, value in tensors.items()},
                {"video": described, "bfloat16": halved, "next_id": self.next_id, "unseen": list(self.unseen.items()),
                 "votes": [[k, list(v.items())] for k, v in self.votes.items()], "scores": list(self.scores.items())})

    def load_state_dict(self, arrays: dict, described: dict) -> None:
        import torch

        tensors = {name[5:]: torch.from_numpy(np.array(value)) for name, value in arrays.items() if name.startswith("sam2.")}
        for name in described["bfloat16"]:
            tensors[name] = tensors[name].to(torch.bfloat16)
        self.video.load_state_dict(tensors, described["video"])
        self.next_id = int(described["next_id"])
        self.unseen = {int(k): int(v) for k, v in described["unseen"]}
        self.votes = {int(k): {int(a): float(b) for a, b in v} for k, v in described["votes"]}
        self.scores = {int(k): float(v) for k, v in described["scores"]}
