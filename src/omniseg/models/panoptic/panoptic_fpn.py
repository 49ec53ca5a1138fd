"""Panoptic FPN (Kirillov et al., 2019): Mask R-CNN plus a semantic head on the same FPN.

The semantic head takes P2..P5: each level goes through ``log2(stride / 4)`` blocks of 3x3 conv,
GroupNorm, ReLU and 2x bilinear upsampling (one block without upsampling for P2), the four 1/4-scale
maps are summed, a 1x1 convolution gives class logits, and they are upsampled 4x. It predicts every
class of the dataset (stuff and things), so it is a semantic model as well; the panoptic output keeps
its stuff classes and takes things from the instance branch (:func:`panoptic_merge`).

``model(images, targets)`` in training returns Mask R-CNN's losses plus ``loss_semantic`` (cross entropy
on the targets' ``semantic`` maps, ``ignore_index`` skipped, weighted by ``semantic_weight``); in eval
``model(images)`` returns Mask R-CNN's dicts with ``semantic`` ``[K, H, W]`` class probabilities added.
"""

from __future__ import annotations

import inspect
import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection import MaskRCNN

from omniseg.models.builder import MODELS
from omniseg.models.instance.mask_rcnn import mask_rcnn


class SemanticFPNHead(nn.Module):
    """The Panoptic FPN semantic branch over FPN levels of strides 4, 8, 16, 32 -> logits at stride 4."""

    def __init__(self, in_channels: int, num_classes: int, channels: int = 128, levels: int = 4) -> None:
        super().__init__()
        groups = math.gcd(32, channels)

        def block(cin: int, upsample: bool) -> list[nn.Module]:
            layers = [nn.Conv2d(cin, channels, 3, padding=1, bias=False), nn.GroupNorm(groups, channels), nn.ReLU(inplace=True)]
            return layers + [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)] if upsample else layers

        self.scales = nn.ModuleList()
        for level in range(levels):
            layers = block(in_channels, level > 0)
            for _ in range(level - 1):
                layers += block(channels, True)
            self.scales.append(nn.Sequential(*layers))
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        size = features[0].shape[-2:]
        total = 0
        for scale, feature in zip(self.scales, features):
            out = scale(feature)
            total = total + (out if out.shape[-2:] == size else F.interpolate(out, size=size, mode="bilinear", align_corners=False))
        return self.classifier(total)


class PanopticFPN(nn.Module):
    """A torchvision Mask R-CNN and a :class:`SemanticFPNHead` sharing its backbone and FPN."""

    def __init__(self, detector: MaskRCNN, num_classes: int, *, semantic_channels: int = 128, semantic_weight: float = 0.5,
                 ignore_index: int | None = None, merge_options: dict | None = None) -> None:
        super().__init__()
        self.detector = detector
        self.merge_options = merge_options or {}  # panoptic_merge's thresholds, kept with the model
        self.semantic_head = SemanticFPNHead(detector.backbone.out_channels, num_classes, semantic_channels)
        self.semantic_weight, self.ignore_index = semantic_weight, ignore_index

    def forward(self, images: list[torch.Tensor], targets: list[dict] | None = None):
        if self.training and (targets is None or any("semantic" not in t for t in targets)):
            raise ValueError("training Panoptic FPN needs targets with a 'semantic' class map [H, W] for every image")
        detector = self.detector
        original_sizes = [tuple(image.shape[-2:]) for image in images]
        semantic = [t["semantic"] for t in targets] if self.training else None
        batch, targets = detector.transform(images, [{k: v for k, v in t.items() if k != "semantic"} for t in targets]
                                            if targets is not None else None)
        features = detector.backbone(batch.tensors)
        proposals, rpn_losses = detector.rpn(batch, features, targets)
        detections, roi_losses = detector.roi_heads(features, proposals, batch.image_sizes, targets)
        logits = self.semantic_head(list(features.values())[:4])
        logits = F.interpolate(logits, size=batch.tensors.shape[-2:], mode="bilinear", align_corners=False)
        if self.training:
            # padding is void; None: the class maps themselves have no void pixels
            void = -100 if self.ignore_index is None else self.ignore_index
            truth = torch.full((len(images), *batch.tensors.shape[-2:]), void, dtype=torch.int64, device=logits.device)
            for index, (height, width) in enumerate(batch.image_sizes):
                resized = F.interpolate(semantic[index][None, None].float(), size=(height, width), mode="nearest-exact")
                truth[index, :height, :width] = resized[0, 0].long()
            loss = F.cross_entropy(logits, truth, ignore_index=void)
            return {**rpn_losses, **roi_losses, "loss_semantic": self.semantic_weight * loss}
        detections = detector.transform.postprocess(detections, batch.image_sizes, original_sizes)
        for index, (detection, (height, width)) in enumerate(zip(detections, batch.image_sizes)):
            crop = logits[index : index + 1, :, :height, :width]
            detection["semantic"] = F.interpolate(crop, size=original_sizes[index], mode="bilinear", align_corners=False)[0].softmax(0)
        return detections


def with_detector_options(builder):
    """Show ``mask_rcnn``'s options in ``builder``'s signature (what ``create_model`` checks keywords against)."""
    own = inspect.signature(builder)
    kept = [p for p in own.parameters.values() if p.kind is not p.VAR_KEYWORD]
    extra = [p for name, p in inspect.signature(mask_rcnn).parameters.items() if name not in own.parameters]
    builder.__signature__ = own.replace(parameters=kept + extra)
    return builder


@MODELS.register("panoptic_fpn", task="panoptic",
                 description="Panoptic FPN: Mask R-CNN + a semantic FPN head (same backbone options as maskrcnn)")
@with_detector_options
def panoptic_fpn(num_classes: int = 2, encoder: str = "resnet50_fpn", *, semantic_channels: int = 128, semantic_weight: float = 0.5,
                 ignore_index: int | None = None, score_threshold: float = 0.5, overlap_threshold: float = 0.5, stuff_min_area: int = 64,
                 **kwargs) -> PanopticFPN:
    """Panoptic FPN for ``num_classes`` classes (0 = background, stuff and things alike); the detector's
    options (``weights``, ``encoder_weights``, anchors, sizes, head widths) are those of ``maskrcnn``.
    ``score_threshold``, ``overlap_threshold`` and ``stuff_min_area`` are the merge's (:func:`panoptic_merge`).

    Example:
        >>> model = panoptic_fpn(3, "resnet18", min_size=64, max_size=64).eval()
        >>> out = model([torch.rand(3, 64, 80)])[0]
        >>> tuple(out["semantic"].shape)
        (3, 64, 80)
    """
    detector = mask_rcnn(num_classes, encoder, **kwargs)
    merge = {"score_threshold": score_threshold, "overlap_threshold": overlap_threshold, "stuff_min_area": stuff_min_area}
    return PanopticFPN(detector, num_classes, semantic_channels=semantic_channels, semantic_weight=semantic_weight,
                       ignore_index=ignore_index, merge_options=merge)
