"""SETR (Zheng et al., CVPR 2021): a plain ViT encoder and the Naive, PUP and MLA decoders."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from omniseg.models.builder import MODELS
from omniseg.models.encoders import TimmEncoder
from omniseg.models.layers.conv import ConvNormAct
from omniseg.models.layers.init import init_weights
from omniseg.models.semantic.base import SegmentationModel
from omniseg.errors import ConfigError


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of ``[N, C, H, W]`` (the token norm before each SETR head)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class NaiveHead(nn.Sequential):
    """SETR-Naive: 1x1 conv + norm + ReLU + 1x1 classifier on the last layer's tokens (upsampled after)."""

    def __init__(self, embed_dim: int, num_classes: int, channels: int = 256) -> None:
        super().__init__(ChannelLayerNorm(embed_dim), ConvNormAct(embed_dim, channels, 1), nn.Conv2d(channels, num_classes, 1))


class PUPHead(nn.Module):
    """SETR-PUP: four stages of 3x3 conv + norm + ReLU + 2x bilinear upsampling (x16 in all)."""

    def __init__(self, embed_dim: int, num_classes: int, channels: int = 256, stages: int = 4) -> None:
        super().__init__()
        self.norm = ChannelLayerNorm(embed_dim)
        self.stages = nn.ModuleList(ConvNormAct(embed_dim if i == 0 else channels, channels, 3) for i in range(stages))
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        for stage in self.stages:
            x = F.interpolate(stage(x), scale_factor=2, mode="bilinear", align_corners=False)
        return self.classifier(x)


class MLAHead(nn.Module):
    """SETR-MLA: features of M evenly spaced layers, 1x1 projections, top-down aggregation by addition
    with a 3x3 conv after each sum, per-stream 3x3 convs (channels halved) and 4x upsampling,
    concatenation, classifier (the final 4x upsampling to the input follows in the model)."""

    def __init__(self, embed_dim: int, num_classes: int, streams: int = 4, channels: int = 256) -> None:
        super().__init__()
        half = channels // 2
        self.norms = nn.ModuleList(ChannelLayerNorm(embed_dim) for _ in range(streams))
        self.project = nn.ModuleList(ConvNormAct(embed_dim, channels, 1) for _ in range(streams))
        self.aggregate = nn.ModuleList(ConvNormAct(channels, channels, 3) for _ in range(streams))
        self.heads = nn.ModuleList(nn.Sequential(ConvNormAct(channels, half, 3), ConvNormAct(half, half, 3))
                                   for _ in range(streams))
        self.classifier = nn.Conv2d(half * streams, num_classes, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        projected = [proj(norm(f)) for f, norm, proj in zip(features, self.norms, self.project)]
        running, aggregated = None, []
        for i in reversed(range(len(projected))):  # top-down: deepest layer first
            running = projected[i] if running is None else running + projected[i]
            aggregated.append(self.aggregate[i](running))
        aggregated.reverse()
        streams = [F.interpolate(head(a), scale_factor=4, mode="bilinear", align_corners=False)
                   for head, a in zip(self.heads, aggregated)]
        return self.classifier(torch.cat(streams, dim=1))


def evenly_spaced_layers(depth: int, count: int) -> list[int]:
    """0-based indices of ``count`` layers ending at the last, e.g. 24 layers, 4 -> [5, 11, 17, 23]."""
    return [round(depth * (i + 1) / count) - 1 for i in range(count)]


def auxiliary_layers(decoder: str, depth: int) -> list[int]:
    """Layers of the paper's auxiliary losses: 10/15/20 of 24 (scaled to ``depth``) for Naive and PUP,
    the first three aggregated layers for MLA."""
    if decoder == "mla":
        return evenly_spaced_layers(depth, 4)[:3]
    return [round(depth * f) - 1 for f in (10 / 24, 15 / 24, 20 / 24)]


class SETR(SegmentationModel):
    """SEgmentation TRansformer: image -> 16x16 patches -> ViT -> a decoder.

    The encoder is any timm ViT (default ``vit_large_patch16_384``, the paper's T-Large), run with
    ``dynamic_img_size`` so any input size works (the position embedding is interpolated).

    Args:
        num_classes: K.
        in_channels: input channels.
        decoder: ``"naive"``, ``"pup"`` or ``"mla"``.
        encoder: a timm ViT name; ``encoder_weights`` as :class:`TimmEncoder` (``"imagenet"`` or a file).
        aux_head: auxiliary Naive heads on intermediate layers (the paper's auxiliary losses: layers
            10/15/20 of 24 for Naive and PUP, the first three MLA layers for MLA), returned by
            ``forward(x, aux=True)``.
        channels: decoder width (256 in the paper).

    Example:
        >>> model = SETR(num_classes=3, decoder="mla", encoder="vit_tiny_patch16_224")
        >>> model(torch.randn(1, 3, 50, 70)).shape
        torch.Size([1, 3, 50, 70])
    """

    def __init__(
        self, *, num_classes: int, in_channels: int = 3, decoder: str = "pup", encoder: str = "vit_large_patch16_384",
        encoder_weights: str | None = None, aux_head: bool = False, channels: int = 256,
    ) -> None:
        super().__init__()
        if decoder not in ("naive", "pup", "mla"):
            raise ConfigError(f"decoder must be 'naive', 'pup' or 'mla', got {decoder!r}")
        depth = _vit_depth(encoder)  # decides which layers feed the decoder
        self.num_classes, self.decoder_name = num_classes, decoder
        main = evenly_spaced_layers(depth, 4) if decoder == "mla" else [depth - 1]
        aux_layers = auxiliary_layers(decoder, depth) if aux_head else []
        self.layers = sorted(set(main) | set(aux_layers))
        self.encoder = TimmEncoder(encoder, in_channels=in_channels, weights=encoder_weights,
                                   out_indices=tuple(self.layers), dynamic_img_size=True)
        embed_dim, patch = self.encoder.channels[-1], self.encoder.strides[-1]
        self.main_positions = [self.layers.index(i) for i in main]
        self.aux_positions = [self.layers.index(i) for i in aux_layers]
        self.size_divisor = patch
        if decoder == "naive":
            self.decode_head = NaiveHead(embed_dim, num_classes, channels)
        elif decoder == "pup":
            self.decode_head = PUPHead(embed_dim, num_classes, channels, stages=max(1, patch.bit_length() - 1))
        else:
            self.decode_head = MLAHead(embed_dim, num_classes, len(main), channels)
        self.aux = nn.ModuleList(NaiveHead(embed_dim, num_classes, channels) for _ in aux_layers) if aux_head else None
        init_weights(self.decode_head)
        if self.aux is not None:
            init_weights(self.aux)

    def _forward(self, x: torch.Tensor, aux: bool = False):
        size = x.shape[-2:]
        features = self.encoder(x)
        main = [features[i] for i in self.main_positions]
        y = self.decode_head(main if self.decoder_name == "mla" else main[0])
        logits = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
        if not aux:
            return logits
        extra = [F.interpolate(head(features[i]), size=size, mode="bilinear", align_corners=False)
                 for head, i in zip(self.aux, self.aux_positions)]
        return logits, extra


def _vit_depth(encoder: str) -> int:
    """Number of transformer blocks of a timm ViT, read from a meta-device instance (no memory, no init)."""
    import timm

    if not timm.is_model(encoder):
        raise ConfigError(f"unknown timm ViT {encoder!r}; see timm.list_models('vit_*')")
    with torch.device("meta"):
        model = timm.create_model(encoder, pretrained=False, num_classes=0)
    blocks = getattr(model, "blocks", None)
    if blocks is None:
        raise ConfigError(f"SETR needs a plain ViT encoder with .blocks (e.g. vit_large_patch16_384), got {encoder!r}")
    return len(blocks)


def _register(decoder: str, description: str) -> None:
    def build(
        *, num_classes: int, in_channels: int = 3, encoder: str = "vit_large_patch16_384",
        encoder_weights: str | None = None, aux_head: bool = False, channels: int = 256,
    ) -> SETR:
        return SETR(num_classes=num_classes, in_channels=in_channels, decoder=decoder, encoder=encoder,
                    encoder_weights=encoder_weights, aux_head=aux_head, channels=channels)

    build.__doc__ = f"{description} (see :class:`SETR`)."
    MODELS.add(f"setr_{decoder}", build, task="semantic", description=description)


_register("naive", "SETR-Naive: ViT + 1x1 head, bilinear x16 (Zheng et al. 2021)")
_register("pup", "SETR-PUP: ViT + progressive 2x upsampling (Zheng et al. 2021)")
_register("mla", "SETR-MLA: ViT + multi-level feature aggregation (Zheng et al. 2021)")
