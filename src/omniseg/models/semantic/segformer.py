"""SegFormer (Xie et al., NeurIPS 2021): Mix Transformer encoder + the lightweight all-MLP decoder."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from omniseg.models.builder import MODELS
from omniseg.models.encoders.mit import MIT_CONFIGS, MixTransformer
from omniseg.models.layers.conv import ConvNormAct
from omniseg.models.semantic.base import SegmentationModel


class MLPProjection(nn.Module):
    """Per-pixel linear layer ``C_i -> D`` of one encoder stage (``linear_c{i}.proj`` in the release)."""

    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_channels, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(x.shape[0], -1, *x.shape[-2:])


class SegFormer(SegmentationModel):
    """SegFormer-B0..B5.

    The decoder unifies the channels of the four MiT stages with per-pixel MLPs, upsamples them to 1/4
    resolution, concatenates (deepest first), fuses with a 1x1 conv + BN + ReLU, and classifies; the
    logits are upsampled bilinearly to the input. Decoder width 256 for B0/B1, 768 for B2-B5.

    Args:
        num_classes: K.
        in_channels: input channels.
        encoder: ``"mit_b0"`` .. ``"mit_b5"``.
        encoder_weights: ``None`` or a file of the authors' MiT ImageNet weights (see :class:`MixTransformer`).
        decoder_dim: override the decoder width.
        dropout: before the classifier (0.1 in the release).

    Example:
        >>> model = SegFormer(num_classes=4, encoder="mit_b0")
        >>> model(torch.randn(1, 3, 61, 77)).shape
        torch.Size([1, 4, 61, 77])
    """

    def __init__(
        self, *, num_classes: int, in_channels: int = 3, encoder: str = "mit_b0", encoder_weights: str | None = None,
        decoder_dim: int | None = None, dropout: float = 0.1, drop_path_rate: float = 0.1,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.encoder = MixTransformer(encoder, in_channels=in_channels, weights=encoder_weights,
                                      drop_path_rate=drop_path_rate)
        dim = decoder_dim or (256 if encoder in ("mit_b0", "mit_b1") else 768)
        for i, channels in enumerate(self.encoder.channels, 1):
            setattr(self, f"linear_c{i}", MLPProjection(channels, dim))
        self.linear_fuse = ConvNormAct(4 * dim, dim, 1)
        self.dropout = nn.Dropout2d(dropout)
        self.linear_pred = nn.Conv2d(dim, num_classes, 1)

    def _forward(self, x: torch.Tensor, aux: bool = False) -> torch.Tensor:
        features = self.encoder(x)
        size = features[0].shape[-2:]
        unified = [F.interpolate(getattr(self, f"linear_c{i}")(f), size=size, mode="bilinear", align_corners=False)
                   for i, f in zip(range(4, 0, -1), reversed(features))]
        logits = self.linear_pred(self.dropout(self.linear_fuse(torch.cat(unified, dim=1))))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


def _register(variant: str) -> None:
    size = variant.split("_")[1].upper()

    def build(
        *, num_classes: int, in_channels: int = 3, encoder_weights: str | None = None,
        decoder_dim: int | None = None, dropout: float = 0.1, drop_path_rate: float = 0.1,
    ) -> SegFormer:
        return SegFormer(num_classes=num_classes, in_channels=in_channels, encoder=variant,
                         encoder_weights=encoder_weights, decoder_dim=decoder_dim, dropout=dropout,
                         drop_path_rate=drop_path_rate)

    description = f"SegFormer-{size}: MiT-{size} + all-MLP decoder (Xie et al. 2021)"
    build.__doc__ = f"{description} (see :class:`SegFormer`)."
    MODELS.add(f"segformer_{size.lower()}", build, task="semantic", description=description)


for _variant in MIT_CONFIGS:
    _register(_variant)
