"""Mask R-CNN (He et al., 2017) from torchvision: RPN, RoIAlign, box and mask heads, on a ResNet-50-FPN
(torchvision's v1, or v2 with its improved heads) or on any timm backbone with an FPN over its stages.

Inputs and outputs follow torchvision's detection convention: ``model(images, targets)`` in training
returns the loss dict; in eval ``model(images)`` returns one dict per image with ``boxes`` (XYXY),
``labels``, ``scores`` and ``masks`` ``[N, 1, H, W]`` probabilities. Class 0 is the background.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import timm
import torch
from torch import nn
from torchvision.models.detection import MaskRCNN, maskrcnn_resnet50_fpn, maskrcnn_resnet50_fpn_v2
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

from omniseg.core.normalisation import IMAGENET_MEAN, IMAGENET_STD
from omniseg.models.builder import MODELS
from omniseg.models.encoders.weights import read_state_dict
from omniseg.models.instance.roi_align import MultiScaleRoIAlign
from omniseg.errors import ConfigError

ANCHOR_PRESETS = {
    "default": (32, 64, 128, 256, 512),
    "small": (8, 16, 32, 64, 128),  # nuclei, cells, small parts: one octave per FPN level, starting at 8 px
}


class TimmFPNBackbone(nn.Module):
    """A timm ``features_only`` encoder with an FPN on ``levels`` of its stages plus a max-pooled extra level:
    the ``OrderedDict`` of ``out_channels``-channel maps torchvision's detectors take (``out_channels``
    attribute). The FPN takes the last ``levels`` stages, or with ``drop_deepest=n`` the ``levels`` before the
    last ``n``, which timm then never builds nor runs (small images gain nothing from a stride-32 stage)."""

    def __init__(self, name: str, *, pretrained: bool = False, levels: int = 4, out_channels: int = 256, in_channels: int = 3,
                 drop_deepest: int = 0) -> None:
        super().__init__()
        picked = {"out_indices": tuple(range(-levels - drop_deepest, -drop_deepest))} if drop_deepest else {}
        self.body = timm.create_model(name, features_only=True, pretrained=pretrained, in_chans=in_channels, **picked)
        channels = self.body.feature_info.channels()
        self.levels = min(levels, len(channels))
        self.fpn = FeaturePyramidNetwork(channels[-self.levels :], out_channels, extra_blocks=LastLevelMaxPool())
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> OrderedDict:
        features = self.body(x)[-self.levels :]
        return self.fpn(OrderedDict((str(i), f) for i, f in enumerate(features)))


def anchor_generator(sizes: Sequence[int] | str, levels: int = 5, aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0)) -> AnchorGenerator:
    """One anchor size per FPN level (a preset name: its first ``levels`` sizes, or the sizes themselves) with
    the same aspect ratios."""
    values = ANCHOR_PRESETS[sizes][:levels] if isinstance(sizes, str) else tuple(int(s) for s in sizes)
    if len(values) != levels:
        raise ConfigError(f"anchor sizes need one size per FPN level ({levels}), got {len(values)}: {values}")
    return AnchorGenerator(tuple((s,) for s in values), (tuple(aspect_ratios),) * levels)


def load_detection_weights(model: nn.Module, path: str | Path) -> list[str]:
    """Load a Mask R-CNN state dict (safetensors, or ``torch.load(weights_only=True)``), e.g. torchvision's
    COCO weights, into ``model``; tensors whose shape differs (the class-specific predictors when the
    class count differs) are left as initialised and returned by name. Any other mismatch is an error."""
    state = read_state_dict(path, "Mask R-CNN weights")
    own = model.state_dict()
    unknown = sorted(set(state) - set(own))
    missing = sorted(set(own) - set(state))
    if unknown or missing:
        raise ConfigError(f"{path} does not fit this Mask R-CNN: {len(unknown)} unknown keys (e.g. {unknown[:2]}), "
                         f"{len(missing)} missing (e.g. {missing[:2]}); was it saved from the same backbone?")
    skipped = [k for k, v in state.items() if v.shape != own[k].shape]
    model.load_state_dict({k: v for k, v in state.items() if k not in skipped}, strict=False)
    return skipped


@MODELS.register("maskrcnn", task="instance", description="Mask R-CNN (torchvision; ResNet-50-FPN v1/v2 or a timm backbone + FPN)")
def mask_rcnn(
    num_classes: int = 2,
    encoder: str = "resnet50_fpn",
    *,
    weights: str | None = None,
    encoder_weights: str | None = None,
    in_channels: int = 3,
    min_size: int = 800,
    max_size: int = 1333,
    anchor_sizes: Sequence[int] | str = "default",
    trainable_layers: int = 3,
    detections_per_image: int = 100,
    box_score_threshold: float = 0.05,
    rpn_pre_nms_top_n_train: int = 2000,
    rpn_post_nms_top_n_train: int = 2000,
    rpn_pre_nms_top_n_test: int = 1000,
    rpn_post_nms_top_n_test: int = 1000,
    box_batch_size_per_image: int = 512,
    fpn_channels: int = 256,
    box_head_size: int = 1024,
    mask_head_channels: int = 256,
    mask_head_layers: int = 4,
    roi_sampling_ratio: int = 2,
    fpn_levels: int = 4,
) -> MaskRCNN:
    """Mask R-CNN for ``num_classes`` classes, class 0 being the background.

    Args:
        encoder: the backbone: ``"resnet50_fpn"`` (v1), ``"resnet50_fpn_v2"`` (torchvision's improved
            recipe), or a timm model name (an FPN is built over its last four stages).
        weights: ``"coco"`` for torchvision's COCO weights (online), or a file of a Mask R-CNN state dict;
            the class-specific predictors are re-initialised when ``num_classes`` differs.
        encoder_weights: ``"imagenet"`` for the backbone's ImageNet weights (online), or None.
        min_size, max_size: torchvision's resizing of the shorter / longer side.
        anchor_sizes: one size per FPN level, or a preset: ``"default"`` (32..512) or ``"small"`` (8..128).
        trainable_layers: backbone stages left trainable (ResNet backbones with pretrained weights).
        detections_per_image, box_score_threshold: what inference keeps.
        rpn_pre_nms_top_n_train, rpn_post_nms_top_n_train, box_batch_size_per_image: proposals kept and RoIs
            sampled per training image (smaller is faster; small images with few objects need far fewer).
        rpn_pre_nms_top_n_test, rpn_post_nms_top_n_test: proposals kept per image at inference (each goes
            through RoIAlign and the box head).
        fpn_channels, box_head_size, mask_head_channels, mask_head_layers: the widths of a timm backbone's
            FPN, of the box head's two fully connected layers and of the mask head's convolutions (256,
            1024, 256 and 4 as in the paper; a fraction of them makes a light detector for small scenes).
        roi_sampling_ratio: RoIAlign's sampling points per bin side (torchvision's 2; 0 adapts it to the
            RoI's size as detectron2 does: one point for small objects, much cheaper on the CPU).
        fpn_levels: backbone stages under a timm backbone's FPN, from stride 4 up (4 as in the paper: strides
            4-32, plus a pooled level); 3 leaves out the stride-32 stage, never computed: for small images
            (a 64-pixel image's stride-32 map is 2x2), a sixth cheaper a step and a third of the parameters
            with ResNet-18. The anchor preset then takes its first ``fpn_levels + 1`` sizes.
    """
    rgb = in_channels == 3
    options = {"min_size": min_size, "max_size": max_size, "image_mean": list(IMAGENET_MEAN) if rgb else [0.5] * in_channels,
               "image_std": list(IMAGENET_STD) if rgb else [0.25] * in_channels,
               "box_detections_per_img": detections_per_image,
               "box_score_thresh": box_score_threshold, "rpn_pre_nms_top_n_train": rpn_pre_nms_top_n_train,
               "rpn_post_nms_top_n_train": rpn_post_nms_top_n_train, "rpn_pre_nms_top_n_test": rpn_pre_nms_top_n_test,
               "rpn_post_nms_top_n_test": rpn_post_nms_top_n_test, "box_batch_size_per_image": box_batch_size_per_image}
    # RoIAlign as matrix products (torchvision's numbers, a backward on all cores), on the FPN's level names
    names = [str(level) for level in range(fpn_levels)]
    options |= {"box_roi_pool": MultiScaleRoIAlign(names, 7, roi_sampling_ratio), "mask_roi_pool": MultiScaleRoIAlign(names, 14, roi_sampling_ratio)}
    if encoder in ("resnet50_fpn", "resnet50_fpn_v2"):
        widths = (fpn_channels, box_head_size, mask_head_channels, mask_head_layers, fpn_levels)
        if widths != (256, 1024, 256, 4, 4):
            raise ConfigError(f"the torchvision {encoder} detector has fixed head widths; fpn_channels, box_head_size, "
                             f"mask_head_channels, mask_head_layers and fpn_levels ({widths}) apply to timm backbones (e.g. encoder='resnet18')")
        if in_channels != 3:
            raise ConfigError(f"the torchvision ResNet-50-FPN backbones take RGB images; for {in_channels} channels use a timm backbone")
        build = maskrcnn_resnet50_fpn if encoder == "resnet50_fpn" else maskrcnn_resnet50_fpn_v2
        coco = weights == "coco"
        model = build(weights="DEFAULT" if coco else None, weights_backbone="DEFAULT" if encoder_weights == "imagenet" and not coco else None,
                      num_classes=91 if coco else num_classes, trainable_backbone_layers=trainable_layers if (coco or encoder_weights) else None,
                      **options)
        if coco and num_classes != 91:
            _replace_predictors(model, num_classes)
        model.rpn.anchor_generator = anchor_generator(anchor_sizes)  # same anchors per location: the RPN head fits
    else:
        if weights == "coco":
            raise ConfigError("COCO weights exist for the torchvision ResNet-50-FPN backbones only; pass a weights file instead")
        if fpn_levels not in (2, 3, 4):
            raise ConfigError(f"fpn_levels must be 2, 3 or 4 (backbone stages from stride 4 up), got {fpn_levels}")
        backbone = TimmFPNBackbone(encoder, pretrained=encoder_weights == "imagenet", in_channels=in_channels, out_channels=fpn_channels,
                                   levels=fpn_levels, drop_deepest=4 - fpn_levels)
        model = MaskRCNN(backbone, num_classes=None, rpn_anchor_generator=anchor_generator(anchor_sizes, levels=fpn_levels + 1),
                         **_heads(fpn_channels, num_classes, box_head_size, mask_head_channels, mask_head_layers), **options)
    if weights not in (None, "coco"):
        load_detection_weights(model, weights)
    return model


def _heads(channels: int, num_classes: int, box_size: int, mask_channels: int, mask_layers: int) -> dict[str, nn.Module]:
    """The box head (two fully connected layers on 7x7 RoIAlign) and the mask head (``mask_layers`` 3x3
    convolutions on 14x14 RoIAlign, then a 2x transposed convolution) with their class predictors."""
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor

    return {"box_head": TwoMLPHead(channels * 7 * 7, box_size), "box_predictor": FastRCNNPredictor(box_size, num_classes),
            "mask_head": MaskRCNNHeads(channels, (mask_channels,) * mask_layers, 1),
            "mask_predictor": MaskRCNNPredictor(mask_channels, mask_channels, num_classes)}


def _replace_predictors(model: MaskRCNN, num_classes: int) -> None:
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
    from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor

    box = model.roi_heads.box_predictor
    model.roi_heads.box_predictor = FastRCNNPredictor(box.cls_score.in_features, num_classes)
    mask = model.roi_heads.mask_predictor
    model.roi_heads.mask_predictor = MaskRCNNPredictor(mask.conv5_mask.in_channels, mask.conv5_mask.out_channels, num_classes)


def at_native_resolution(detector: nn.Module) -> nn.Module:
    """A view of a torchvision detector (same weights) that sees each image at its own resolution instead of
    resizing it to ``min_size``: for tiles cut from a large image at the scale the model was trained at."""
    view = copy.copy(detector)
    view._modules = dict(detector._modules)  # the view's own module table: the detector keeps its transform
    transform = copy.copy(detector.transform)
    transform.resize = lambda image, target=None: (image, target)
    view.transform = transform
    return view
