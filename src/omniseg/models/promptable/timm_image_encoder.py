"""Any timm backbone as Segment Anything's image encoder: its feature map at the embedding stride (16 as SAM's
ViT, or 8 for small images) through SAM's neck (1x1 and 3x3 convolutions with channel LayerNorms) to the prompt
width. Light encoders (ResNet-18, MobileNet, EfficientNet) make promptable models that train on a CPU, and
ImageNet weights (``weights="imagenet"`` or a local file) start them where the user has them."""

from __future__ import annotations

import timm
import torch
from torch import nn

from omniseg.errors import ConfigError
from omniseg.models.encoders import TimmEncoder
from omniseg.models.promptable.blocks import LayerNorm2d


def stage_strides(name: str) -> list[int]:
    """The output stride of each feature stage of timm model ``name`` (empty for an unknown name)."""
    if name not in timm.list_models():
        return []  # TimmEncoder names the unknown model with close matches
    with torch.device("meta"):  # only the stage layout is read: nothing is allocated
        return list(timm.create_model(name, features_only=True).feature_info.reduction())


def choose_stage(name: str, strides: list[int], stride: int, stage: int | None) -> tuple[int, int | None]:
    """``(stage index, timm output_stride)`` of timm model ``name`` (its stages' ``strides``) for an embedding at
    ``stride``: the deepest stage at that stride, or the ``stage`` asked for, dilated down to ``stride`` when it is
    deeper (``output_stride``)."""
    if not strides:
        return -1, None
    if stage is None:
        if stride not in strides:
            raise ConfigError(f"timm encoder {name!r} has no feature stage at stride {stride} (its strides: {strides}); "
                              "pick another embedding_stride or encoder, or an encoder_stage to dilate")
        return len(strides) - 1 - strides[::-1].index(stride), None
    if not 0 <= stage < len(strides) or strides[stage] < stride:
        raise ConfigError(f"encoder_stage {stage} of {name!r} does not give stride {stride} (its stages' strides: {strides})")
    return stage, stride if strides[stage] > stride else None


class TimmImageEncoder(nn.Module):
    """``[N, 3, img, img]`` -> ``[N, out_chans, img / stride, img / stride]``: timm's stage at ``stride`` (or the
    deeper ``stage`` asked for, dilated to ``stride``; the later stages are not built) and SAM's neck.

    With ``high_res_features`` the output is ``(embedding, features at stride / 2, features at stride / 4)``: the
    timm stages at those strides projected to ``out_chans / 4`` and ``out_chans / 8`` channels, which the mask
    decoder adds to its upscaling path (SAM 2's high-resolution features: sharp boundaries from a coarse embedding).
    """

    def __init__(self, name: str, *, img_size: int, out_chans: int, stride: int = 16, stage: int | None = None,
                 weights: str | None = None, high_res_features: bool = False) -> None:
        super().__init__()
        if img_size % stride:
            raise ConfigError(f"img_size {img_size} must be a multiple of the embedding stride {stride}")
        self.img_size = img_size
        strides = stage_strides(name)
        index, output_stride = choose_stage(name, strides, stride, stage)
        indices = (index,)
        if high_res_features:
            indices = (choose_stage(name, strides, stride // 4, None)[0], choose_stage(name, strides, stride // 2, None)[0], index)
        self.backbone = TimmEncoder(name, weights=weights, out_indices=indices, output_stride=output_stride)
        self.neck = nn.Sequential(
            nn.Conv2d(self.backbone.channels[-1], out_chans, kernel_size=1, bias=False), LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False), LayerNorm2d(out_chans))
        self.high_res = nn.ModuleList(
            nn.Conv2d(channels, out_chans // factor, kernel_size=1)
            for channels, factor in zip(self.backbone.channels[1::-1], (4, 8))) if high_res_features else None

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        features = self.backbone(x)
        embedding = self.neck(features[-1])
        if self.high_res is None:
            return embedding
        return embedding, self.high_res[0](features[1]), self.high_res[1](features[0])
