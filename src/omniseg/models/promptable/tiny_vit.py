"""TinyViT (Wu et al., 2022) as MobileSAM's image encoder (Zhang et al., 2023): a convolutional stem and
MBConv stage, then three stages of windowed attention with learnt relative biases and a depthwise
convolution, and SAM's 256-channel neck. Names follow MobileSAM's release (``mobile_sam.pt`` loads unchanged);
the classifier ``norm_head``/``head`` the release keeps are kept, unused.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from omniseg.models.promptable.blocks import LayerNorm2d, attend


class Conv2d_BN(nn.Sequential):  # noqa: N801 (the release's name, kept for its state-dict keys)
    """Convolution ``c`` without bias, then BatchNorm ``bn``."""

    def __init__(self, a: int, b: int, ks: int = 1, stride: int = 1, pad: int = 0, groups: int = 1,
                 bn_weight_init: float = 1.0) -> None:
        super().__init__()
        self.add_module("c", nn.Conv2d(a, b, ks, stride, pad, groups=groups, bias=False))
        bn = nn.BatchNorm2d(b)
        nn.init.constant_(bn.weight, bn_weight_init)
        nn.init.zeros_(bn.bias)
        self.add_module("bn", bn)


class PatchEmbed(nn.Module):
    """Two stride-2 3x3 convolutions: 1/4 resolution."""

    def __init__(self, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.seq = nn.Sequential(Conv2d_BN(in_chans, embed_dim // 2, 3, 2, 1), nn.GELU(), Conv2d_BN(embed_dim // 2, embed_dim, 3, 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, 3x3 depthwise, 1x1 project, residual, GELU."""

    def __init__(self, channels: int, expand_ratio: float) -> None:
        super().__init__()
        hidden = int(channels * expand_ratio)
        self.conv1 = Conv2d_BN(channels, hidden)
        self.act1 = nn.GELU()
        self.conv2 = Conv2d_BN(hidden, hidden, 3, 1, 1, groups=hidden)
        self.act2 = nn.GELU()
        self.conv3 = Conv2d_BN(hidden, channels, bn_weight_init=0.0)
        self.act3 = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv3(self.act2(self.conv2(self.act1(self.conv1(x)))))
        return self.act3(x + y)


class PatchMerging(nn.Module):
    """1x1, strided depthwise 3x3 (``stride``), 1x1: tokens ``[B, L, C]`` (or a map) -> tokens ``[B, L', out]``."""

    def __init__(self, input_resolution: tuple[int, int], dim: int, out_dim: int, stride: int = 2) -> None:
        super().__init__()
        self.input_resolution = input_resolution
        self.act = nn.GELU()
        self.conv1 = Conv2d_BN(dim, out_dim)
        self.conv2 = Conv2d_BN(out_dim, out_dim, 3, stride, 1, groups=out_dim)
        self.conv3 = Conv2d_BN(out_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            height, width = self.input_resolution
            x = x.view(x.shape[0], height, width, -1).permute(0, 3, 1, 2)
        x = self.conv3(self.act(self.conv2(self.act(self.conv1(x)))))
        return x.flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Window attention with a learnt bias per head and per (|dy|, |dx|) offset (LeViT's attention biases)."""

    def __init__(self, dim: int, key_dim: int, num_heads: int, resolution: tuple[int, int]) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.scale = key_dim ** -0.5
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * key_dim * num_heads)
        self.proj = nn.Linear(key_dim * num_heads, dim)
        points = list(itertools.product(range(resolution[0]), range(resolution[1])))
        offsets: dict[tuple[int, int], int] = {}
        index = [offsets.setdefault((abs(a[0] - b[0]), abs(a[1] - b[1])), len(offsets)) for a in points for b in points]
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, len(offsets)))
        self.register_buffer("attention_bias_idxs", torch.tensor(index).view(len(points), len(points)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, _ = x.shape
        qkv = self.qkv(self.norm(x)).view(batch, tokens, self.num_heads, -1).permute(0, 2, 1, 3)
        q, k, v = qkv.split([self.key_dim, self.key_dim, self.key_dim], dim=3)
        bias = self.attention_biases[:, self.attention_bias_idxs]
        out = attend(q, k, v, bias.to(q.dtype), scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, -1))


class Mlp(nn.Module):
    """LayerNorm, then a GELU feed-forward layer."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


class TinyViTBlock(nn.Module):
    """Window attention (residual), a depthwise 3x3 convolution, then the MLP (residual)."""

    def __init__(self, dim: int, input_resolution: tuple[int, int], num_heads: int, window_size: int,
                 mlp_ratio: float = 4.0, local_conv_size: int = 3) -> None:
        super().__init__()
        self.input_resolution = input_resolution
        self.window_size = window_size
        self.attn = Attention(dim, dim // num_heads, num_heads, (window_size, window_size))
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.local_conv = Conv2d_BN(dim, dim, local_conv_size, 1, local_conv_size // 2, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = self.input_resolution
        batch, tokens, channels = x.shape
        window = self.window_size
        if height == window and width == window:
            attended = self.attn(x)
        else:
            grid = x.view(batch, height, width, channels)
            pad_b, pad_r = (-height) % window, (-width) % window
            if pad_b or pad_r:
                grid = F.pad(grid, (0, 0, 0, pad_r, 0, pad_b))
            ph, pw = height + pad_b, width + pad_r
            nh, nw = ph // window, pw // window
            windows = grid.view(batch, nh, window, nw, window, channels).transpose(2, 3).reshape(batch * nh * nw, window * window, channels)
            grid = self.attn(windows).view(batch, nh, nw, window, window, channels).transpose(2, 3).reshape(batch, ph, pw, channels)
            attended = grid[:, :height, :width].reshape(batch, tokens, channels)
        x = x + attended
        x = self.local_conv(x.transpose(1, 2).reshape(batch, channels, height, width)).view(batch, channels, tokens).transpose(1, 2)
        return x + self.mlp(x)


class ConvLayer(nn.Module):
    """The first stage: MBConv blocks, then a patch merging."""

    def __init__(self, dim: int, input_resolution: tuple[int, int], depth: int, out_dim: int, expand_ratio: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(MBConv(dim, expand_ratio) for _ in range(depth))
        self.downsample = PatchMerging(input_resolution, dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.downsample(x)


class BasicLayer(nn.Module):
    """An attention stage: TinyViT blocks, then (except the last stage) a patch merging."""

    def __init__(self, dim: int, input_resolution: tuple[int, int], depth: int, num_heads: int, window_size: int,
                 mlp_ratio: float, downsample: PatchMerging | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(TinyViTBlock(dim, input_resolution, num_heads, window_size, mlp_ratio) for _ in range(depth))
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.downsample(x) if self.downsample is not None else x


class TinyViT(nn.Module):
    """MobileSAM's encoder: ``[N, 3, img_size, img_size]`` -> ``[N, 256, img/16, img/16]``. The stages run at
    1/4, 1/8, 1/16 and 1/16 of the input (the last merging keeps the resolution, as MobileSAM's does)."""

    def __init__(self, *, img_size: int = 1024, in_chans: int = 3, num_classes: int = 1000,
                 embed_dims: Sequence[int] = (64, 128, 160, 320), depths: Sequence[int] = (2, 2, 6, 2),
                 num_heads: Sequence[int] = (2, 4, 5, 10), window_sizes: Sequence[int] = (7, 7, 14, 7),
                 mlp_ratio: float = 4.0, mbconv_expand_ratio: float = 4.0, out_chans: int = 256) -> None:
        super().__init__()
        self.img_size = img_size
        self.patch_embed = PatchEmbed(in_chans, embed_dims[0])
        quarter = img_size // 4
        sides = [quarter, quarter // 2, quarter // 4, quarter // 4]
        self.layers = nn.ModuleList()
        for i, dim in enumerate(embed_dims):
            resolution = (sides[i], sides[i])
            out_dim = embed_dims[min(i + 1, len(embed_dims) - 1)]
            if i == 0:
                self.layers.append(ConvLayer(dim, resolution, depths[i], out_dim, mbconv_expand_ratio))
                continue
            merge = PatchMerging(resolution, dim, out_dim, stride=1 if i == len(embed_dims) - 2 else 2) \
                if i < len(embed_dims) - 1 else None
            self.layers.append(BasicLayer(dim, resolution, depths[i], num_heads[i], window_sizes[i], mlp_ratio, merge))
        self.norm_head = nn.LayerNorm(embed_dims[-1])
        self.head = nn.Linear(embed_dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dims[-1], out_chans, kernel_size=1, bias=False), LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False), LayerNorm2d(out_chans))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        side = self.img_size // 16
        return self.neck(x.view(x.shape[0], side, side, -1).permute(0, 3, 1, 2))
