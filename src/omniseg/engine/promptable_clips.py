"""SAM 2 fine-tuned on video clips (SAM 2's recipe, Ravi et al. 2024): each training clip of K frames is encoded, its
objects (those of the first frame) are prompted there, all by a click drawn inside or all by a jittered box
(``prompt.box_fraction`` of the clips), and followed through the clip by the memory (memory attention, the memory
encoder and the object pointers learn with the rest). Every frame's masks learn: focal + Dice (20:1) on the best of
the proposals (SAM 2 proposes three on a single click and on tracked frames), the MSE of the IoU head, and the cross
entropy of the object score (is the object in this frame at all); an object absent from a frame teaches only its
score there.

Validation prompts each object of the held-out clips with the simulated person's first click (the deepest pixel of
the object, :func:`omniseg.metrics.clicks.next_click`) on the first frame and follows it with the video predictor:
the monitored ``val_miou_1`` is the mean IoU over objects and frames.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.nn import functional as F

from omniseg.config import DataConfig, PromptConfig, RunConfig
from omniseg.engine.datamodule import endless_loader, shard_loader
from omniseg.engine.promptable import MAX_LOSS_SIZE, PromptableTask
from omniseg.engine.simulated_prompts import first_points, jittered_boxes
from omniseg.metrics.clicks import mask_iou, next_click
from omniseg.models.promptable.sam2 import Sam2
from omniseg.models.promptable.tracking import FrameFeatures, TrackingSettings, frame_features, track_step


def collate_clips(clips: list[dict]) -> list[dict]:
    return clips


class FlippedClips(torch.utils.data.Dataset):
    """Training clips, each mirrored left-right with probability ``p`` (frames and masks together). Keys are the
    endless sampler's ``(index, augmentation seed)``: a resumed run mirrors the clips the uninterrupted run did."""

    def __init__(self, clips: torch.utils.data.Dataset, p: float = 0.5) -> None:
        self.clips, self.p = clips, p

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        index, seed = key if isinstance(key, tuple) else (key, None)
        clip = self.clips[index]
        if random.Random(seed).random() < self.p:
            clip = {**clip, "frames": clip["frames"].flip(-1), "masks": clip["masks"].flip(-1)}
        return clip


class ClipDataModule(L.LightningDataModule):
    """Clips of ``length`` frames of a video dataset's train split (overlapping, mirrored at random) and of its val
    split (one after another)."""

    def __init__(self, source, config: DataConfig, *, length: int, seed: int = 0) -> None:
        super().__init__()
        self.config, self.seed = config, seed
        self.train_set = FlippedClips(source.clips("train", length), p=0.5 if config.hflip else 0.0)
        self.val_set = source.clips("val", length, step=length)

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self):
        rank, world = self._world()
        return endless_loader(self.train_set, batch_size=self.config.batch_size, seed=self.seed, rank=rank, world_size=world,
                              trainer=self.trainer, collate_fn=collate_clips, num_workers=self.config.num_workers)

    def val_dataloader(self):
        rank, world = self._world()
        return shard_loader(self.val_set, batch_size=1, rank=rank, world_size=world, collate_fn=collate_clips,
                            num_workers=self.config.num_workers)


def _frame(features: FrameFeatures, t: int, objects: int) -> FrameFeatures:
    """Frame ``t`` of a clip's features, repeated for each of its ``objects`` (the memory step's batch)."""
    return FrameFeatures([x[:, t:t + 1].expand(-1, objects, -1) for x in features.vision_feats],
                         [x[:, t:t + 1].expand(-1, objects, -1) for x in features.vision_pos], features.sizes)


def follow_clicked(model: Sam2, clip: dict, *, device: torch.device | str) -> list[np.ndarray]:
    """Each object of ``clip`` clicked once on the first frame (the simulated person's first click) and followed by
    the video predictor: the masks ``[objects, H, W]`` of every frame."""
    from omniseg.inference.promptable.video_predictor import VideoPredictor

    frames = [frame.permute(1, 2, 0).numpy() for frame in clip["frames"]]
    truth = clip["masks"].numpy()
    predictor = VideoPredictor(model, device=str(device), fill_hole_area=0, precision="32").start(frames)
    for k in range(truth.shape[1]):
        click = next_click(np.zeros_like(truth[0, k]), truth[0, k])
        predictor.add_prompt(0, k + 1, points=[[click.x, click.y]], labels=[1])
    return [masks for _, _, masks in predictor.propagate()]


def clip_click_ious(found: list[np.ndarray], clip: dict) -> list[float]:
    """The IoU of each followed object (:func:`follow_clicked`) on every frame of ``clip``, object by object."""
    truth = clip["masks"].numpy()
    return [mask_iou(masks[k], truth[t, k]) for t, masks in enumerate(found) for k in range(truth.shape[1])]


class ClipPromptableTask(PromptableTask):
    """Trains a SAM 2 on clips (see the module); the monitored metric is the one-click video mIoU (``val_miou_1``)."""

    def __init__(self, model: Sam2, *, prompt: PromptConfig, optim) -> None:
        super().__init__(model, prompt=prompt, optim=optim)
        self.settings = TrackingSettings.of(model.version)
        self._ious: list[float] = []

    def training_step(self, batch: list[dict], batch_idx: int) -> torch.Tensor:
        model = self.model
        if self.encoder_frozen:
            model.image_encoder.eval()
        total, objects = None, 0
        for clip in batch:
            if clip["masks"].shape[1] == 0:  # no object on the first frame: nothing to prompt
                continue
            loss = self._clip_loss(clip)
            total = loss if total is None else total + loss
            objects += 1
        if total is None:  # a zero loss keeps every parameter in the graph
            return self.check_loss(sum(p.sum() for p in model.parameters() if p.requires_grad) * 0.0, len(batch))
        return self.check_loss(total / objects, len(batch))

    def _clip_loss(self, clip: dict) -> torch.Tensor:
        """The mean per-object loss over the frames of one clip."""
        model, frame = self.model, self.model.image_size
        frames, masks = clip["frames"].to(self.device), clip["masks"].to(self.device)
        length, count = masks.shape[:2]
        x = model.preprocess(frames)
        if self.encoder_frozen:
            with torch.no_grad():
                features = frame_features(model, x)
        else:
            features = frame_features(model, x)
        size = min(frame, MAX_LOSS_SIZE)
        truth = F.interpolate(masks.float(), size=(size, size), mode="area") > 0.5  # [K, N, L, L]
        first = truth[0]
        by_box = random.random() < self.prompt.box_fraction
        if by_box:
            boxes = jittered_boxes(first, frame, noise=self.prompt.box_noise)
            points = {"point_coords": boxes.reshape(count, 2, 2),
                      "point_labels": torch.tensor([[2, 3]], dtype=torch.int32, device=self.device).expand(count, -1)}
        else:
            points = {"point_coords": first_points(first, frame),
                      "point_labels": torch.ones(count, 1, dtype=torch.int32, device=self.device)}
        outputs: dict = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
        total = torch.zeros((), device=self.device)
        for t in range(length):
            out = track_step(model, self.settings, t, t == 0, _frame(features, t, count), points if t == 0 else None, None,
                             outputs, length)
            outputs["cond_frame_outputs" if t == 0 else "non_cond_frame_outputs"][t] = out
            total = total + self._frame_loss(out, truth[t])
        return total / (length * count)

    def _frame_loss(self, out: dict, truth: torch.Tensor) -> torch.Tensor:
        """The summed loss of one frame's objects: the proposals' (objects present only) and the object score's."""
        present = truth.flatten(1).any(1)
        scores = out["object_score_logits"]
        loss = F.binary_cross_entropy_with_logits(scores[:, 0], present.float(), reduction="sum")
        if present.any():
            logits = F.interpolate(out["multimasks"][present], size=truth.shape[-2:], mode="bilinear", align_corners=False)
            loss = loss + self._mask_loss(logits, out["ious"][present], truth[present])[0]
        return loss

    def on_validation_epoch_start(self) -> None:
        self._ious = []

    def validation_step(self, batch: list[dict], batch_idx: int) -> None:
        for clip in batch:
            self._ious += clip_click_ious(follow_clicked(self.model, clip, device=self.device), clip)

    def on_validation_epoch_end(self) -> None:
        ious = self._gathered(self._ious)
        miou = float(np.mean(ious)) if ious else math.nan
        self.last_validation = {"val_miou_1": miou, "train_loss": self.mean_train_loss(), "objects": float(len(ious))}
        if not self.trainer.sanity_checking:
            self.log("val_miou_1", 0.0 if math.isnan(miou) else miou, prog_bar=True, sync_dist=False)


def write_clip_report(run_dir: Path, clips: torch.utils.data.Dataset, *, config: RunConfig, extra: dict) -> dict:
    """Click each object of the val ``clips`` once with the saved model and follow it; write ``curves.png`` and, for
    the first clips, ``samples/<video>_<start>.png`` (the frames, the followed masks, the truth)."""
    from omniseg.models.hub import load_model
    from omniseg.viz.plots import plot_curves

    model = load_model(run_dir)
    samples = run_dir / "samples"
    samples.mkdir(exist_ok=True)
    ious = []
    for index, clip in enumerate(clips):
        found = follow_clicked(model, clip, device="cpu")
        ious += clip_click_ious(found, clip)
        if index < config.train.num_samples:
            write_clip_sheet(clip, found, samples / f"{clip['video']}_{clip['start']}.png")
    if (run_dir / "history.csv").exists():
        plot_curves(run_dir / "history.csv", run_dir / "curves.png", metrics=("val_miou_1",))
    objects = sum(clip["masks"].shape[1] for clip in clips)
    # mIoU@1: the mean IoU over every object on every frame of its clip after one click on the first frame
    return {"task": "promptable", "split": "val", "mIoU@1": float(np.mean(ious)) if ious else math.nan, "objects": objects,
            "clips": len(clips), "object_frames": len(ious), "prompt": "one click on the first frame, followed", **extra}


def write_clip_sheet(clip: dict, found: list[np.ndarray], path: Path) -> None:
    """The clip's frames in a row (top), with the followed masks ``found`` (middle) and with the truth (bottom), each
    object in its own bright colour."""
    from PIL import Image

    from omniseg.core.info import default_palette
    from omniseg.viz.overlay import overlay

    frames = [frame.permute(1, 2, 0).numpy() for frame in clip["frames"]]
    truth = clip["masks"].numpy()
    palette = default_palette(truth.shape[1] + 1)

    def painted(frame: np.ndarray, masks: np.ndarray) -> np.ndarray:
        labels = np.zeros(frame.shape[:2], np.int64)
        for k, mask in enumerate(masks):
            labels[mask] = k + 1
        return overlay(frame, labels, palette, alpha=0.65, background=0, ignore_index=-1)

    rows = [np.concatenate(frames, axis=1)]
    rows += [np.concatenate([painted(frames[t], masks[t]) for t in range(len(frames))], axis=1) for masks in (found, truth)]
    sheet = Image.fromarray(np.concatenate(rows, axis=0))
    scale = max(1, 192 // frames[0].shape[0])  # small frames enlarged (pixels kept sharp) to be seen
    sheet.resize((sheet.width * scale, sheet.height * scale), Image.NEAREST).save(path)
