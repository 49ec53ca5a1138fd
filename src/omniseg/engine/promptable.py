"""Promptable training (Segment Anything's recipe, Kirillov et al., 2023): each step encodes a batch of images
once, prompts up to ``objects_per_image`` of their objects as a person would (a point or a jittered box, then
corrective clicks in the error region with the last mask's logits as the mask input; :mod:`simulated_prompts`),
and learns from every pass: focal + Dice (20:1) on the best of the three masks of a single click (on the one mask
otherwise), plus the MSE of the IoU head (and, for SAM 2, the cross entropy of its object score: every prompted
object is there). Validation clicks every object of the val images with the standard
simulator (:mod:`omniseg.metrics.clicks`): mIoU after 1, 3 and 5 clicks, NoC@85/90."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from omniseg.config import OptimConfig, PromptConfig
from omniseg.engine.module import OptimisedTask
from omniseg.engine.simulated_prompts import corrective_clicks, first_points, jittered_boxes
from omniseg.errors import ConfigError
from omniseg.inference.evaluate.clicks import object_curves
from omniseg.inference.promptable.prompt_predictor import PromptPredictor
from omniseg.losses import binary_dice_loss, binary_focal_loss
from omniseg.metrics.clicks import click_metrics
from omniseg.models.promptable import Sam
from omniseg.models.promptable.sam2 import Sam2
from omniseg.models.promptable.lora import add_lora, merge_lora

PARTS = ("image_encoder", "prompt_encoder", "mask_decoder")
MAX_LOSS_SIZE = 256  # the loss resolution at most (SAM's low-res masks at 1024 px)


def prepare_for_finetuning(model: Sam | Sam2, prompt: PromptConfig) -> None:
    """Freeze the parts ``prompt.freeze`` names and add low-rank adapters (``prompt.lora_rank``) to the image
    encoder's attention, whose other weights are then frozen."""
    unknown = sorted(set(prompt.freeze) - set(PARTS))
    if unknown:
        raise ConfigError(f"prompt.freeze names {unknown}; the parts are {', '.join(PARTS)}")
    for part in prompt.freeze:
        getattr(model, part).requires_grad_(False)
    if prompt.lora_rank:
        if "image_encoder" in prompt.freeze:
            raise ConfigError("prompt.lora_rank adapts the image encoder, which prompt.freeze keeps frozen; drop one of them")
        model.image_encoder.requires_grad_(False)
        add_lora(model.image_encoder, rank=prompt.lora_rank, alpha=prompt.lora_alpha)
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(f"prompt.freeze {list(prompt.freeze)} leaves nothing to train; keep at least the mask decoder trainable")


class PromptableTask(OptimisedTask):
    """Trains a :class:`~omniseg.models.promptable.Sam` or a SAM 2 with simulated prompts (see the module); the
    monitored metric is the one-click mIoU (``val_miou_1``)."""

    def __init__(self, model: Sam | Sam2, *, prompt: PromptConfig, optim: OptimConfig) -> None:
        super().__init__(model, optim=optim)
        for key in ("objects_per_image", "max_clicks"):
            if getattr(prompt, key) < 1:
                raise ConfigError(f"prompt.{key} must be at least 1, got {getattr(prompt, key)}")
        if prompt.corrective_clicks < 0 or prompt.refine_iterations < 0 or not 0 <= prompt.box_fraction <= 1:
            raise ConfigError("prompt.corrective_clicks and prompt.refine_iterations must be >= 0 and prompt.box_fraction in 0..1")
        self.prompt = prompt
        self.encoder_frozen = not any(p.requires_grad for p in model.image_encoder.parameters())
        self._curves: list[list[float]] = []

    def model_to_save(self) -> nn.Module:
        return merge_lora(self.model)  # adapters folded in: the run saves the model's own layout

    def training_step(self, batch: tuple, batch_idx: int) -> torch.Tensor:
        images, targets = batch
        model, frame = self.model, self.model.img_size
        x = torch.stack(images) * 255  # crops of the model's frame (the trainer sets data.img_size to it)
        if self.encoder_frozen:  # no gradient and no BatchNorm statistics to update in a frozen encoder
            model.image_encoder.eval()
            with torch.no_grad():
                embeddings = model.embed_images(model.preprocess(x))
        else:
            embeddings = model.embed_images(model.preprocess(x))
        owners, truth = self._objects(targets, size=min(frame, MAX_LOSS_SIZE))
        if not len(truth):  # crops without objects: nothing to prompt (a zero loss keeps every parameter in the graph)
            return self.check_loss(sum(p.sum() for p in model.parameters() if p.requires_grad) * 0.0, len(images))
        order = torch.randperm(len(truth), device=truth.device)  # the first prompts' kinds are drawn over objects in random order
        chosen = owners[order]
        loss = self._interactive_loss(tuple(f[chosen] for f in embeddings) if isinstance(embeddings, tuple) else embeddings[chosen],
                                      truth[order], frame)
        return self.check_loss(loss, len(images))

    def _objects(self, targets: list[dict], size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Up to ``objects_per_image`` random objects of each image: their image's index and their masks at the
        loss resolution ``size`` (objects smaller than a pixel there are left out)."""
        owners, masks = [], []
        for index, target in enumerate(targets):
            chosen = torch.randperm(len(target["masks"]))[: self.prompt.objects_per_image]
            owners += [index] * len(chosen)
            masks.append(target["masks"][chosen])
        if not owners:
            return torch.zeros(0, dtype=torch.long), torch.zeros(0, size, size, dtype=torch.bool)
        truth = torch.cat(masks).float()[:, None]
        if truth.shape[-1] != size or truth.shape[-2] != size:
            truth = F.interpolate(truth, size=(size, size), mode="area")
        truth = truth[:, 0] > 0.5
        keep = truth.flatten(1).any(1)
        return torch.tensor(owners, device=self.device)[keep.to(self.device)], truth[keep].to(self.device)

    def _interactive_loss(self, embeddings: torch.Tensor | tuple[torch.Tensor, ...], truth: torch.Tensor, frame: int) -> torch.Tensor:
        """The mean loss over the first prompt, the corrective clicks and the refinement passes (``embeddings``: each
        object's image embedding, or the tuple with its high-resolution features). The objects are in
        random order; the first ``boxed`` start from a box, the others from a point. Both kinds make token
        sequences of one length (a point and the padding token, or the two corners; then the clicks), so each
        pass is one decoder call over every object."""
        prompt, model = self.prompt, self.model
        count = len(truth)
        boxed = int((torch.rand(count) < prompt.box_fraction).sum())
        groups = [(slice(0, boxed), True), (slice(boxed, count), False)]
        starts = first_points(truth[boxed:], frame)
        boxes = jittered_boxes(truth[:boxed], frame, noise=prompt.box_noise)
        clicks = torch.zeros(count, 0, 2, device=truth.device)
        click_labels = torch.zeros(count, 0, dtype=torch.long, device=truth.device)
        low_res = predicted = None  # the last pass's chosen masks: logits (the next mask prompt) and bool
        passes = ["first"] + ["click"] * prompt.corrective_clicks + ["refine"] * prompt.refine_iterations
        total = truth.new_zeros((), dtype=torch.float32)
        for kind in passes:
            if kind == "click":
                point, label = corrective_clicks(predicted, truth, frame)
                clicks, click_labels = torch.cat([clicks, point], 1), torch.cat([click_labels, label], 1)
            sparse, dense = [], []
            for rows, by_box in groups:
                if rows.start == rows.stop:
                    continue
                if by_box:
                    points = (clicks[rows], click_labels[rows]) if clicks.shape[1] else None
                else:  # the first point, then the clicks
                    points = (torch.cat([starts, clicks[rows]], 1),
                              torch.cat([click_labels.new_ones(len(starts), 1), click_labels[rows]], 1))
                tokens, mask_prompt = model.prompt_encoder(points, boxes if by_box else None,
                                                           None if kind == "first" else low_res[rows])
                sparse.append(tokens)
                dense.append(mask_prompt)
            masks, iou_predictions, object_scores = model.decode_all(embeddings, torch.cat(sparse), torch.cat(dense))
            if object_scores is not None:  # every prompted object is in its image
                total = total + F.binary_cross_entropy_with_logits(object_scores, torch.ones_like(object_scores), reduction="sum")
            logits = F.interpolate(masks, size=truth.shape[-2:], mode="bilinear", align_corners=False)
            carried = []
            for rows, by_box in groups:
                if rows.start == rows.stop:
                    continue
                # one click is ambiguous: its three masks (the best one learns); otherwise the single-mask output
                outputs = slice(1, None) if kind == "first" and not by_box else slice(0, 1)
                loss, best = self._mask_loss(logits[rows, outputs], iou_predictions[rows, outputs], truth[rows])
                total = total + loss
                carried.append(outputs.start + best)
            # the mask the model trusts most goes on to the next pass, as in use
            best = torch.cat(carried)
            every = torch.arange(count, device=best.device)
            low_res, predicted = masks[every, best][:, None].detach(), logits[every, best].detach() > 0
        return total / (count * len(passes))

    def _mask_loss(self, logits: torch.Tensor, iou_predictions: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The summed loss of some objects' masks ``[n, M, L, L]``: focal + Dice of the best of their M masks, and
        the MSE of the IoU head against every mask's IoU; and the index of the mask the IoU head scores highest."""
        prompt = self.prompt
        target = truth[:, None].float()
        mask_loss = (prompt.focal_weight * binary_focal_loss(logits, target, alpha=prompt.focal_alpha)
                     + prompt.dice_weight * binary_dice_loss(logits, target))
        with torch.no_grad():
            hits = logits > 0
            ious = (hits & truth[:, None]).flatten(2).sum(-1) / (hits | truth[:, None]).flatten(2).sum(-1).clamp(min=1)
        iou_loss = F.mse_loss(iou_predictions, ious, reduction="none").mean(1)
        return (mask_loss.amin(1) + prompt.iou_weight * iou_loss).sum(), iou_predictions.argmax(1)

    def on_validation_epoch_start(self) -> None:
        self._curves = []
        self._predictor = PromptPredictor(self.model, device=str(self.device), cache_size=1)

    def validation_step(self, batch: tuple, batch_idx: int) -> None:
        images, targets = batch
        for image, target in zip(images, targets):
            self._curves += object_curves(self._predictor, image, target["masks"], max_clicks=self.prompt.max_clicks)

    def on_validation_epoch_end(self) -> None:
        curves = self._gathered(self._curves)
        table = click_metrics(curves, max_clicks=self.prompt.max_clicks) if curves else {}
        summary = {f"val_{validation_name(key)}": value for key, value in table.items() if key != "objects"}
        self.last_validation = {**summary, "train_loss": self.mean_train_loss(), "objects": table.get("objects", 0.0)}
        if not self.trainer.sanity_checking:
            for key, value in summary.items():
                self.log(key, 0.0 if math.isnan(value) else value, prog_bar=key == "val_miou_1", sync_dist=False)


def validation_name(key: str) -> str:
    """``mIoU@1`` -> ``miou_1``, ``NoC@85`` -> ``noc85``: the click table's names as history columns."""
    name, _, at = key.partition("@")
    return f"{name.lower()}_{at}" if name == "mIoU" else f"{name.lower()}{at}"
