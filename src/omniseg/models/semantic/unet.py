"""U-Net (Ronneberger et al., 2015) with its own encoder or any timm encoder."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from omniseg.models.builder import MODELS
from omniseg.models.encoders import TimmEncoder, UNetEncoder
from omniseg.models.layers import ConvNormAct, DoubleConv, make_upsample
from omniseg.models.layers.factory import ActLayer, NormLayer
from omniseg.models.layers.init import init_weights
from omniseg.models.semantic.base import SegmentationModel, overlap_tile, valid_output_size
from omniseg.errors import ConfigError


class UNetDecoder(nn.Module):
    """Expanding path: upsample, concatenate the skip of the same stride, DoubleConv.

    When the shallowest skip has stride > 1 (timm encoders start at stride 2), extra blocks without a
    skip upsample on to full resolution.
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        encoder_strides: Sequence[int],
        decoder_channels: Sequence[int],
        *,
        upsampling: str = "transposed",
        norm_layer: NormLayer = "batch",
        act_layer: ActLayer = "relu",
        padding: int = 1,
    ) -> None:
        super().__init__()
        self.crop_skips = padding == 0
        skips = list(zip(encoder_channels[:-1], encoder_strides[:-1]))[::-1]
        stride = encoder_strides[-1]
        n_extra = max(round(math.log2(encoder_strides[0])), 0)
        plan = [(c, s) for c, s in skips] + [(0, None)] * n_extra
        if len(decoder_channels) != len(plan):
            raise ConfigError(
                f"decoder_channels needs {len(plan)} entries for this encoder (strides {list(encoder_strides)}), "
                f"got {len(decoder_channels)}"
            )
        self.ups, self.blocks, self.scales = nn.ModuleList(), nn.ModuleList(), []
        previous = encoder_channels[-1]
        for (skip_channels, skip_stride), out_channels in zip(plan, decoder_channels):
            scale = stride // skip_stride if skip_stride else 2
            stride = skip_stride or stride // 2
            up, up_channels = make_upsample(upsampling, previous, scale=scale)
            self.ups.append(up)
            self.blocks.append(
                DoubleConv(up_channels + skip_channels, out_channels, padding=padding, norm_layer=norm_layer,
                           act_layer=act_layer)
            )
            self.scales.append(scale)
            previous = out_channels
        self.out_channels = previous

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        skips = features[:-1][::-1]
        for i, (up, block) in enumerate(zip(self.ups, self.blocks)):
            x = up(x)
            if i < len(skips):
                skip = skips[i]
                if self.crop_skips:  # valid convolutions: copy and crop the skip to the centre
                    top = (skip.shape[-2] - x.shape[-2]) // 2
                    left = (skip.shape[-1] - x.shape[-1]) // 2
                    skip = skip[..., top : top + x.shape[-2], left : left + x.shape[-1]]
                elif x.shape[-2:] != skip.shape[-2:]:  # odd feature sizes in some backbones
                    x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
                x = torch.cat([x, skip], dim=1)
            x = block(x)
        return x


@MODELS.register("unet", task="semantic", description="U-Net, built-in encoder or any timm encoder")
class UNet(SegmentationModel):
    """U-Net: a contracting encoder, an expanding decoder with skip connections, a 1x1 classifier.

    Args:
        num_classes: K, the number of output channels (logits).
        in_channels: input image channels.
        encoder: ``None`` for the paper's encoder (``depth``, ``base_channels``), or a timm model name.
        encoder_weights: for a timm encoder: ``None``, ``"imagenet"`` or a weights file.
        depth: poolings of the built-in encoder.
        base_channels: channels of the first level of the built-in encoder (64 in the paper).
        decoder_channels: channels of each decoder block, deepest first; defaults mirror the built-in
            encoder, or ``(256, 128, 64, 32, 16)`` for a timm encoder.
        upsampling: ``"transposed"`` (the paper's 2x2 up-convolution), ``"bilinear"`` or ``"nearest"``.
        norm_layer, act_layer: names or callables (see ``omniseg.models.layers.factory``).
        padding: ``"same"`` (outputs at the input size, inputs padded to the stride) or ``"valid"``, the
            paper's unpadded convolutions with copy-and-crop skips; ``valid_forward`` maps a 572x572 tile
            to 388x388, and ``forward`` mirrors the borders (overlap-tile) to cover any input.
        stem_stride: 1 (the paper's) or 2: a stride-2 convolution first, so that the built-in encoder and
            the decoder work at half resolution, and a light full-resolution branch (``full_channels``
            features of the input, joined with the upsampled decoder output) restores the detail: about
            a third of the cost per image, for small images and CPUs.
        full_channels: width of that full-resolution branch (``stem_stride=2``); 0 for none: the logits
            are predicted at half resolution and upsampled bilinearly (cheaper still; enough for the demo).

    Shape: ``[N, in_channels, H, W] -> [N, num_classes, H, W]`` for any H, W.

    Example:
        >>> model = UNet(num_classes=3, depth=2, base_channels=8)
        >>> model(torch.randn(1, 3, 37, 50)).shape
        torch.Size([1, 3, 37, 50])
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int = 3,
        encoder: str | None = None,
        encoder_weights: str | None = None,
        depth: int = 4,
        base_channels: int = 64,
        decoder_channels: Sequence[int] | None = None,
        upsampling: str | None = None,
        norm_layer: NormLayer = "batch",
        act_layer: ActLayer = "relu",
        padding: str = "same",
        stem_stride: int = 1,
        full_channels: int = 8,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        if padding not in ("same", "valid"):
            raise ConfigError(f"padding must be 'same' or 'valid', got {padding!r}")
        if stem_stride not in (1, 2):
            raise ConfigError(f"stem_stride must be 1 or 2, got {stem_stride}")
        self.valid = padding == "valid"
        if self.valid and encoder is not None:
            raise ConfigError("padding='valid' needs the built-in encoder (encoder=None)")
        if stem_stride == 2 and (encoder is not None or self.valid):
            raise ConfigError("stem_stride=2 needs the built-in encoder (encoder=None) and padding='same'")
        layers = {"norm_layer": norm_layer, "act_layer": act_layer}
        self.stem = self.full = self.refine = None
        if stem_stride == 2:
            self.stem = ConvNormAct(in_channels, base_channels, stride=2, **layers)
            if full_channels:
                self.full = ConvNormAct(in_channels, full_channels, **layers)
        if encoder is None:
            if encoder_weights is not None:
                raise ConfigError("encoder_weights needs a timm encoder (encoder='resnet34', ...)")
            self.encoder = UNetEncoder(
                in_channels=base_channels if stem_stride == 2 else in_channels, depth=depth, base_channels=base_channels,
                norm_layer=norm_layer, act_layer=act_layer, padding=0 if self.valid else 1,
            )
            decoder_channels = decoder_channels or self.encoder.channels[-2::-1]
            upsampling = upsampling or "transposed"
        else:
            self.encoder = TimmEncoder(encoder, in_channels=in_channels, weights=encoder_weights)
            decoder_channels = decoder_channels or (256, 128, 64, 32, 16)[-len(self.encoder.strides) :]
            upsampling = upsampling or "nearest"
        self.decoder = UNetDecoder(
            self.encoder.channels,
            self.encoder.strides,
            list(decoder_channels),
            upsampling=upsampling,
            norm_layer=norm_layer,
            act_layer=act_layer,
            padding=0 if self.valid else 1,
        )
        head_channels = self.decoder.out_channels
        if self.full is not None:
            self.refine = ConvNormAct(head_channels + full_channels, full_channels, **layers)
            head_channels = full_channels
        self.head = nn.Conv2d(head_channels, num_classes, kernel_size=1)
        self.size_divisor = max(self.encoder.strides) * stem_stride
        own = [m for m in (self.stem, self.full, self.refine) if m is not None]
        for part in (self.decoder, self.head, *own) if encoder is not None else (self.encoder, self.decoder, self.head, *own):
            init_weights(part)

    def valid_output_size(self, size: int) -> int | None:
        """Output side of the unpadded network for an input side ``size`` (572 -> 388 at depth 4), or None
        when ``size`` does not fit the valid convolutions and poolings."""
        return valid_output_size(size, len(self.encoder.strides) - 1)

    def valid_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The paper's network as is: valid convolutions, output smaller than the input (572 -> 388)."""
        return self.head(self.decoder(self.encoder(x)))

    def forward(self, x: torch.Tensor, aux: bool = False):
        if not self.valid:
            return super().forward(x, aux=aux)
        self._check_aux(aux)
        return overlap_tile(self.valid_forward, x, len(self.encoder.strides) - 1)

    def _forward(self, x: torch.Tensor, aux: bool = False):
        if self.stem is None:
            return self.valid_forward(x)
        features = self.decoder(self.encoder(self.stem(x)))  # at half resolution
        if self.full is None:  # logits at half resolution, upsampled
            return F.interpolate(self.head(features), size=x.shape[-2:], mode="bilinear", align_corners=False)
        features = F.interpolate(features, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(self.refine(torch.cat([features, self.full(x)], dim=1)))
