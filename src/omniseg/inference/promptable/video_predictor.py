"""Objects followed through a video with Segment Anything 2, streaming: a frame is decoded and encoded when it is
needed (one frame's features are kept), each object's memories are stored in bfloat16 (half the memory; computed in
float32), and, by default, only the outputs the memory can still read are kept, so memory does not grow with the
video's length.

Prompts (clicks, a box or a mask) go on any frame, before or between propagations: a new object joins without a
reset, and a correction on a frame already tracked takes the object's earlier memory into account. Each object is
tracked on its own, as the official predictor does, and its outputs follow the official ``SAM2VideoPredictor``.

Example:
    >>> predictor = VideoPredictor(create_model("sam2.1_hiera_tiny", checkpoint="sam2.1_hiera_tiny.pt"))  # doctest: +SKIP
    >>> predictor.start("clip.mp4")  # doctest: +SKIP
    >>> predictor.add_prompt(0, obj_id=1, points=[[640, 360]], labels=[1])  # doctest: +SKIP
    >>> for frame, ids, masks in predictor.propagate():  # doctest: +SKIP
    ...     pass
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from omniseg.core.device import resolve_device
from omniseg.core.precision import autocast, resolve_precision
from omniseg.data.video import VideoFrames
from omniseg.errors import ConfigError
from omniseg.inference.promptable.automatic_masks import remove_small_regions
from omniseg.models.promptable.sam2 import Sam2
from omniseg.models.promptable.tracking import NO_OBJECT_SCORE, TrackingSettings, encode_memory, frame_features, track_step


@dataclass
class TrackedObject:
    """One object's prompts and outputs: ``points`` and ``masks`` by frame, the outputs of prompted frames (``cond``)
    and of tracked ones (``tracked``), each a track-step dictionary, and which frames were tracked in reverse."""

    points: dict[int, dict] = field(default_factory=dict)
    masks: dict[int, torch.Tensor] = field(default_factory=dict)
    cond: dict[int, dict] = field(default_factory=dict)
    tracked: dict[int, dict] = field(default_factory=dict)
    reverse: dict[int, bool] = field(default_factory=dict)
    pending: set[int] = field(default_factory=set)  # prompted frames whose memory is not encoded yet

    @property
    def outputs(self) -> dict:
        return {"cond_frame_outputs": self.cond, "non_cond_frame_outputs": self.tracked}


class VideoPredictor:
    """Segment Anything 2 on a video: :meth:`start`, :meth:`add_prompt` on any frame, :meth:`propagate` (lazy),
    :meth:`remove_object`, :meth:`reset`.

    Args:
        model: a SAM 2 model (``create_model("sam2.1_hiera_tiny", checkpoint=...)``).
        device: the compute device (default: CUDA when available, else the CPU).
        fill_hole_area: background holes of at most this many low-resolution pixels inside a mask are filled (SAM 2's
            video setting: 8; 0 turns it off).
        keep_frames: tracked frames' outputs kept behind the current one (the memory reads the last 6 and the object
            pointers of the last 15); None keeps every frame (the official predictor's behaviour, memory growing with
            the video). Prompted frames are always kept.
        precision: ``"auto"`` (bfloat16 where this device computes it faster, measured), ``"32"`` or ``"bf16"``; the
            mask logits, scores and pointers are kept in float32 either way.
    """

    def __init__(self, model: Sam2, *, device: str | None = None, fill_hole_area: int = 8, keep_frames: int | None = 16,
                 precision: str = "auto") -> None:
        if not isinstance(model, Sam2):
            raise ConfigError(f"the video predictor takes a Segment Anything 2 model (sam2.1_hiera_*), got {type(model).__name__}")
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.model = model.eval().to(self.device)
        self.settings = TrackingSettings.of(model.version)
        self.fill_hole_area, self.keep_frames = fill_hole_area, keep_frames
        self.frames: Sequence[np.ndarray] | None = None
        self.objects: dict[int, TrackedObject] = {}
        self._features: tuple[int, object] | None = None
        self._positions: dict[tuple, torch.Tensor] = {}

    # -- the video ------------------------------------------------------------------------------------------
    def start(self, video: str | Path | Iterable[np.ndarray]) -> VideoPredictor:
        """Track in ``video``: a video file, a folder of frames, a TIFF stack, or any sequence of RGB uint8 frames (read
        by index when needed: anything with ``len`` and ``[index]``, such as an open :class:`VideoFrames`; an iterable
        without them is read into a list). Any earlier video and its objects are dropped."""
        if isinstance(video, (str, Path)):
            self.frames = VideoFrames(video)
        else:
            indexed = hasattr(video, "__len__") and hasattr(video, "__getitem__")
            self.frames = video if isinstance(video, Sequence) or indexed else list(video)
        if len(self.frames) == 0:
            raise ConfigError("the video has no frames")
        first = np.asarray(self.frames[0])
        self.height, self.width = first.shape[:2]
        self.reset()
        return self

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    def reset(self) -> None:
        """Forget every object and prompt (the video stays)."""
        self.objects.clear()
        self._features = None

    def _frame(self, index: int):
        if self._features is None or self._features[0] != index:
            frame = np.ascontiguousarray(np.asarray(self.frames[index]))
            image = torch.from_numpy(frame if frame.flags.writeable else frame.copy()).to(self.device).permute(2, 0, 1)
            with autocast(self.precision, self.device):
                self._features = (index, frame_features(self.model, self.model.preprocess(image[None])))
        return self._features[1]

    # -- prompts --------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def add_prompt(self, frame: int, obj_id: int, *, points=None, labels=None, box=None, mask=None,
                   clear: bool = True) -> tuple[int, list[int], np.ndarray]:
        """Prompt object ``obj_id`` on ``frame``: clicks ``points`` ``[N, 2]`` (x, y pixels) with ``labels`` (1 object,
        0 background), a ``box`` (x0, y0, x1, y1; with clicks too), or a ``mask`` ``[H, W]``. ``clear`` False adds the
        clicks to the frame's earlier ones. Returns ``(frame, object ids, masks [objects, H, W] bool)`` of that frame."""
        self._check_started()
        if not 0 <= frame < self.num_frames:
            raise ConfigError(f"frame {frame} is outside the video (0..{self.num_frames - 1})")
        tracked = self.objects.get(int(obj_id)) or TrackedObject()  # joins the objects once its prompt is accepted
        if mask is not None:
            if points is not None or box is not None:
                raise ConfigError("give a mask, or clicks and a box, for one object on one frame, not both")
            self._add_mask(frame, tracked, mask)
        else:
            self._add_points(frame, tracked, points, labels, box, clear)
        self.objects.setdefault(int(obj_id), tracked)
        return frame, list(self.objects), self._frame_masks(frame)

    def _add_points(self, frame: int, tracked: TrackedObject, points, labels, box, clear: bool) -> None:
        if points is None and box is None:
            raise ConfigError("a prompt needs clicks (points with labels), a box or a mask")
        coords = np.zeros((0, 2), np.float32) if points is None else np.asarray(points, np.float32).reshape(-1, 2)
        values = np.ones(len(coords), np.int32) if labels is None else np.asarray(labels, np.int32).reshape(-1)
        if len(values) != len(coords):
            raise ConfigError(f"{len(coords)} points but {len(values)} labels; give one label a point")
        outside = (coords[:, 0] < 0) | (coords[:, 0] > self.width) | (coords[:, 1] < 0) | (coords[:, 1] > self.height)
        if outside.any():
            raise ConfigError(f"point {coords[outside][0].tolist()} is outside the {self.width} x {self.height} frame")
        if box is not None:
            if not clear:
                raise ConfigError("a box starts an object's prompt on a frame: add it with clear=True, clicks after it")
            coords = np.concatenate([np.asarray(box, np.float32).reshape(2, 2), coords])
            values = np.concatenate([np.array([2, 3], np.int32), values])
        scale = np.array([self.model.image_size / self.width, self.model.image_size / self.height], np.float32)
        new = {"point_coords": torch.from_numpy(coords * scale)[None].to(self.device),
               "point_labels": torch.from_numpy(values)[None].to(self.device)}
        old = None if clear else tracked.points.get(frame)
        if old is not None:
            new = {key: torch.cat([old[key], new[key]], dim=1) for key in new}
        tracked.points[frame] = new
        tracked.masks.pop(frame, None)
        previous = tracked.cond.get(frame) or tracked.tracked.get(frame)
        self._prompted_step(frame, tracked, new, None, None if previous is None else previous["pred_masks"].clamp(-32.0, 32.0))

    def _add_mask(self, frame: int, tracked: TrackedObject, mask) -> None:
        mask = torch.as_tensor(np.asarray(mask), device=self.device)
        if mask.shape != (self.height, self.width):
            raise ConfigError(f"the mask is {tuple(mask.shape)}, the frame {self.height} x {self.width}")
        size = self.model.image_size
        resized = F.interpolate(mask.float()[None, None], (size, size), mode="bilinear", align_corners=False, antialias=True) >= 0.5
        tracked.masks[frame] = resized
        tracked.points.pop(frame, None)
        self._prompted_step(frame, tracked, None, resized, None)

    def _prompted_step(self, frame: int, tracked: TrackedObject, points: dict | None, mask: torch.Tensor | None,
                       logits: torch.Tensor | None) -> None:
        """The memory step of a prompted frame (its memory is encoded before the next propagation)."""
        first = frame not in tracked.reverse  # never tracked: no memory yet
        features = self._frame(frame)
        with autocast(self.precision, self.device):
            out = track_step(self.model, self.settings, frame, first, features, points, mask, tracked.outputs, self.num_frames,
                             reverse=tracked.reverse.get(frame, False), run_mem_encoder=False, prev_sam_mask_logits=logits)
        self._compact(out)
        out["pred_masks"] = self._fill_holes(out["pred_masks"])
        tracked.cond[frame] = out
        tracked.tracked.pop(frame, None)
        tracked.pending.add(frame)

    def remove_object(self, obj_id: int) -> None:
        """Stop following ``obj_id`` (its prompts and memories are dropped; the other objects are untouched)."""
        if int(obj_id) not in self.objects:
            raise ConfigError(f"no object {obj_id} is tracked; tracked: {', '.join(map(str, self.objects)) or 'none'}")
        del self.objects[int(obj_id)]

    # -- propagation ----------------------------------------------------------------------------------------
    @torch.inference_mode()
    def propagate(self, start: int | None = None, direction: str = "forward", max_frames: int | None = None
                  ) -> Iterator[tuple[int, list[int], np.ndarray]]:
        """Yield ``(frame, object ids, masks [objects, H, W] bool)`` frame by frame from ``start`` (default: the first
        prompted frame) ``forward``, ``backward`` or ``both`` (forward, then backward from ``start``)."""
        self._check_started()
        if direction not in ("forward", "backward", "both"):
            raise ConfigError(f"direction {direction!r}: forward, backward or both")
        if not self.objects:
            raise ConfigError("no object to follow: add a prompt first (add_prompt)")
        self._encode_pending()
        if start is None:
            start = min(t for tracked in self.objects.values() for t in tracked.cond)
        if not 0 <= start < self.num_frames:
            raise ConfigError(f"start frame {start} is outside the video (0..{self.num_frames - 1})")
        count = max_frames or self.num_frames
        passes = {"forward": [False], "backward": [True], "both": [False, True]}[direction]
        for reverse in passes:
            order = range(start, max(start - count, 0) - 1, -1) if reverse else range(start, min(start + count, self.num_frames))
            if reverse and start == 0:
                continue
            for frame in order:
                yield frame, list(self.objects), self._track_frame(frame, reverse)

    def _track_frame(self, frame: int, reverse: bool) -> np.ndarray:
        logits = []
        for tracked in self.objects.values():
            if frame in tracked.cond:
                out = tracked.cond[frame]
            else:
                features = self._frame(frame)
                with autocast(self.precision, self.device):
                    out = track_step(self.model, self.settings, frame, False, features, None, None, tracked.outputs,
                                     self.num_frames, reverse=reverse)
                self._compact(out)
                out["pred_masks"] = self._fill_holes(out["pred_masks"])
                tracked.tracked[frame] = out
                self._forget_old(tracked, frame, reverse)
            tracked.reverse[frame] = reverse
            logits.append(out["pred_masks"])
        return self._to_video(torch.cat(logits)) if logits else np.zeros((0, self.height, self.width), bool)

    def _encode_pending(self) -> None:
        """The memories of prompted frames, from their final masks (as the official preflight does)."""
        for tracked in self.objects.values():
            for frame in sorted(tracked.pending):
                out = tracked.cond[frame]
                size = self.model.image_size
                high = F.interpolate(out["pred_masks"], (size, size), mode="bilinear", align_corners=False)
                features = self._frame(frame)
                with autocast(self.precision, self.device):
                    out["maskmem_features"], out["maskmem_pos_enc"] = encode_memory(self.model, self.settings, features, high,
                                                                                   out["object_score_logits"], True)
                self._compact(out)
            tracked.pending.clear()

    def _compact(self, out: dict) -> None:
        """Keep what later frames read: the memory in bfloat16, logits, scores and pointers in float32, no
        high-resolution mask."""
        for key in ("pred_masks_high_res", "multimasks", "ious"):
            out.pop(key, None)
        for key in ("pred_masks", "obj_ptr", "object_score_logits"):
            out[key] = out[key].float()
        if out.get("maskmem_pos_enc") is not None:  # the memory's positions depend on its size only: one copy serves all
            position = out["maskmem_pos_enc"][-1]
            out["maskmem_pos_enc"] = [self._positions.setdefault((tuple(position.shape), position.dtype), position)]
        if out.get("maskmem_features") is not None:
            out["maskmem_features"] = out["maskmem_features"].to(torch.bfloat16)

    def _forget_old(self, tracked: TrackedObject, frame: int, reverse: bool) -> None:
        if self.keep_frames is None:
            return
        stale = [t for t in tracked.tracked if (t > frame + self.keep_frames if reverse else t < frame - self.keep_frames)]
        for t in stale:
            del tracked.tracked[t]

    # -- saving and restoring (a killed run resumes where it stopped) ----------------------------------------
    OUTPUT_KEYS = ("pred_masks", "obj_ptr", "object_score_logits", "maskmem_features")

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict]:
        """The objects' prompts and kept outputs as ``(tensors, description)``, for :meth:`load_state_dict` (safetensors
        and JSON on disk): everything later frames read, so tracking goes on as if it had never stopped."""
        tensors, description = {}, {}
        for obj_id, tracked in self.objects.items():
            entry = {"points": sorted(tracked.points), "masks": sorted(tracked.masks), "cond": {}, "tracked": {},
                     "reverse": {str(t): r for t, r in tracked.reverse.items()}, "pending": sorted(tracked.pending),
                     "positioned": []}
            for frame, points in tracked.points.items():
                tensors[f"{obj_id}/points/{frame}/coords"] = points["point_coords"]
                tensors[f"{obj_id}/points/{frame}/labels"] = points["point_labels"]
            for frame, mask in tracked.masks.items():
                tensors[f"{obj_id}/masks/{frame}"] = mask.to(torch.uint8)
            for kind in ("cond", "tracked"):
                for frame, out in getattr(tracked, kind).items():
                    present = [key for key in self.OUTPUT_KEYS if out.get(key) is not None]
                    entry[kind][str(frame)] = present
                    for key in present:
                        tensors[f"{obj_id}/{kind}/{frame}/{key}"] = out[key]
                    if out.get("maskmem_pos_enc") is not None:  # one copy: every memory's positions are the same
                        entry["positioned"].append(f"{kind}/{frame}")
                        tensors["memory_positions"] = out["maskmem_pos_enc"][0]
            description[str(obj_id)] = entry
        return {k: v.detach().contiguous().cpu() for k, v in tensors.items()}, {"objects": description, "frames": self.num_frames}

    def load_state_dict(self, tensors: dict[str, torch.Tensor], description: dict) -> None:
        """Restore what :meth:`state_dict` saved (on the same video)."""
        self._check_started()
        if description["frames"] != self.num_frames:
            raise ConfigError(f"the saved tracking state is of a {description['frames']}-frame video, this one has {self.num_frames}")
        get = (lambda key: tensors[key].to(self.device))
        self.reset()
        positions = get("memory_positions") if "memory_positions" in tensors else None
        if positions is not None:
            self._positions[(tuple(positions.shape), positions.dtype)] = positions
        for obj_id, entry in description["objects"].items():
            tracked = TrackedObject()
            for frame in entry["points"]:
                tracked.points[frame] = {"point_coords": get(f"{obj_id}/points/{frame}/coords"),
                                         "point_labels": get(f"{obj_id}/points/{frame}/labels")}
            for frame in entry["masks"]:
                tracked.masks[frame] = get(f"{obj_id}/masks/{frame}").bool()
            for kind in ("cond", "tracked"):
                for frame, present in entry[kind].items():
                    out = {key: get(f"{obj_id}/{kind}/{frame}/{key}") for key in present}
                    out["maskmem_pos_enc"] = [positions] if f"{kind}/{frame}" in entry["positioned"] else None
                    out.setdefault("maskmem_features", None)
                    getattr(tracked, kind)[int(frame)] = out
            tracked.reverse = {int(t): r for t, r in entry["reverse"].items()}
            tracked.pending = set(entry["pending"])
            self.objects[int(obj_id)] = tracked

    # -- outputs --------------------------------------------------------------------------------------------
    def _fill_holes(self, logits: torch.Tensor) -> torch.Tensor:
        """Background holes of at most ``fill_hole_area`` low-resolution pixels inside a mask become mask (score 0.1)."""
        if self.fill_hole_area <= 0:
            return logits
        filled = logits.clone()
        for index in range(logits.shape[0]):
            mask = (logits[index, 0] > 0).cpu().numpy()
            closed, changed = remove_small_regions(mask, self.fill_hole_area + 1, "holes")
            if changed:
                holes = torch.from_numpy(closed & ~mask).to(logits.device)
                filled[index, 0] = torch.where(holes, torch.full_like(logits[index, 0], 0.1), logits[index, 0])
        return filled

    def _to_video(self, logits: torch.Tensor) -> np.ndarray:
        masks = F.interpolate(logits.float(), (self.height, self.width), mode="bilinear", align_corners=False)
        return (masks[:, 0] > 0).cpu().numpy()

    def _frame_masks(self, frame: int) -> np.ndarray:
        logits = []
        for tracked in self.objects.values():
            out = tracked.cond.get(frame) or tracked.tracked.get(frame)
            size = self.model.image_size // 4
            logits.append(out["pred_masks"] if out is not None else torch.full((1, 1, size, size), NO_OBJECT_SCORE, device=self.device))
        return self._to_video(torch.cat(logits))

    def _check_started(self) -> None:
        if self.frames is None:
            raise ConfigError("no video: call start(video) first")
