"""Convolution blocks shared by the decoders."""

from __future__ import annotations

from torch import nn

from omniseg.models.layers.factory import ActLayer, NormLayer, get_act_layer, get_norm_layer


class ConvNormAct(nn.Sequential):
    """Conv2d -> norm -> activation; the conv has no bias when a norm layer follows."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        stride: int = 1,
        dilation: int = 1,
        padding: int | None = None,
        norm_layer: NormLayer = "batch",
        act_layer: ActLayer = "relu",
    ) -> None:
        padding = dilation * (kernel_size - 1) // 2 if padding is None else padding
        has_norm = norm_layer != "none"
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, bias=not has_norm),
            get_norm_layer(norm_layer)(out_channels),
            get_act_layer(act_layer)(),
        )


class DoubleConv(nn.Sequential):
    """Two 3x3 ConvNormAct blocks, the unit of U-Net: ``[N, in, H, W] -> [N, out, H, W]``
    (``padding=0`` gives the paper's valid convolutions: ``H - 4, W - 4``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        padding: int | None = None,
        norm_layer: NormLayer = "batch",
        act_layer: ActLayer = "relu",
    ) -> None:
        super().__init__(
            ConvNormAct(in_channels, out_channels, padding=padding, norm_layer=norm_layer, act_layer=act_layer),
            ConvNormAct(out_channels, out_channels, padding=padding, norm_layer=norm_layer, act_layer=act_layer),
        )
