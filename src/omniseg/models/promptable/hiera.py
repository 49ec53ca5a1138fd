"""Segment Anything 2's image encoder (Ravi et al. 2024): the Hiera trunk (Ryali et al. 2023) and an FPN neck.

Hiera is a plain hierarchical vision transformer: a 7x7 stride-4 patch embedding, then stages of blocks whose first
block halves the resolution by max-pooling the attention's queries (and doubles the width and heads); blocks attend
within windows, a few globally; the positional embedding is a background embedding interpolated to the token grid
plus a window-sized one tiled over it ("window absolute" embedding, Bolya et al. 2023). The neck projects each
stage to ``d_model`` channels, adds the upsampled coarser level to the finer ones it feeds top-down, and gives each
level a sine positional encoding. Module and parameter names are those of the official release, so its checkpoints'
``image_encoder.*`` keys load unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from omniseg.errors import ConfigError
from omniseg.models.promptable.blocks import MLP, attend
from omniseg.models.promptable.image_encoder import window_partition, window_unpartition

#: the released trunks: embed_dim, num_heads, blocks per stage, global-attention blocks, background embedding size,
#: window size per stage
HIERA_SIZES = {
    "tiny": dict(embed_dim=96, num_heads=1, stages=(1, 2, 7, 2), global_att_blocks=(5, 7, 9), window_pos_embed_bkg_spatial_size=(7, 7),
                 window_spec=(8, 4, 14, 7)),
    "small": dict(embed_dim=96, num_heads=1, stages=(1, 2, 11, 2), global_att_blocks=(7, 10, 13),
                  window_pos_embed_bkg_spatial_size=(7, 7), window_spec=(8, 4, 14, 7)),
    "base_plus": dict(embed_dim=112, num_heads=2, stages=(2, 3, 16, 3), global_att_blocks=(12, 16, 20),
                      window_pos_embed_bkg_spatial_size=(14, 14), window_spec=(8, 4, 14, 7)),
    "large": dict(embed_dim=144, num_heads=2, stages=(2, 6, 36, 4), global_att_blocks=(23, 33, 43),
                  window_pos_embed_bkg_spatial_size=(7, 7), window_spec=(8, 4, 16, 8)),
}


def pool_tokens(x: torch.Tensor, pool: nn.Module | None) -> torch.Tensor:
    """Max-pool ``[B, H, W, C]`` tokens over their grid (a stage's first block halves the resolution)."""
    if pool is None:
        return x
    return pool(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class PatchEmbed(nn.Module):
    """A 7x7 stride-4 convolution: ``[N, C, H, W]`` -> tokens ``[N, H/4, W/4, D]``."""

    def __init__(self, in_chans: int = 3, embed_dim: int = 96) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=7, stride=4, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class MultiScaleAttention(nn.Module):
    """Multi-head attention over ``[B, H, W, C]`` tokens whose queries may be pooled (``q_pool``), so the output
    grid is the pooled one and its width ``dim_out``."""

    def __init__(self, dim: int, dim_out: int, num_heads: int, q_pool: nn.Module | None = None) -> None:
        super().__init__()
        self.num_heads, self.q_pool = num_heads, q_pool
        self.qkv = nn.Linear(dim, dim_out * 3)
        self.proj = nn.Linear(dim_out, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, height, width, _ = x.shape
        q, k, v = self.qkv(x).reshape(batch, height * width, 3, self.num_heads, -1).unbind(2)
        if self.q_pool is not None:
            q = pool_tokens(q.reshape(batch, height, width, -1), self.q_pool)
            height, width = q.shape[1:3]
            q = q.reshape(batch, height * width, self.num_heads, -1)
        out = attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.proj(out.transpose(1, 2).reshape(batch, height, width, -1))


class MultiScaleBlock(nn.Module):
    """Pre-norm transformer block on ``[B, H, W, C]`` tokens: (windowed) attention, then a GELU MLP. With
    ``q_stride`` the block pools its queries (and its shortcut, projected to ``dim_out``): a stage's first block."""

    def __init__(self, dim: int, dim_out: int, num_heads: int, *, mlp_ratio: float = 4.0, q_stride: tuple[int, int] | None = None,
                 window_size: int = 0) -> None:
        super().__init__()
        self.dim, self.dim_out, self.window_size, self.q_stride = dim, dim_out, window_size, q_stride
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.pool = nn.MaxPool2d(kernel_size=q_stride, stride=q_stride) if q_stride else None
        self.attn = MultiScaleAttention(dim, dim_out, num_heads, q_pool=self.pool)
        self.norm2 = nn.LayerNorm(dim_out, eps=1e-6)
        self.mlp = MLP(dim_out, int(dim_out * mlp_ratio), dim_out, num_layers=2, act=nn.GELU)
        if dim != dim_out:
            self.proj = nn.Linear(dim, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.dim != self.dim_out:
            shortcut = pool_tokens(self.proj(x), self.pool)
        window = self.window_size
        if window > 0:
            size = x.shape[1:3]
            x, padded = window_partition(x, window)
        x = self.attn(x)
        if self.q_stride:  # the pooled queries made every window (and the grid) smaller
            window = self.window_size // self.q_stride[0]
            size = shortcut.shape[1:3]
            padded = (size[0] + (-size[0]) % window, size[1] + (-size[1]) % window) if window > 0 else size
        if self.window_size > 0:
            x = window_unpartition(x, window, padded, size)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class Hiera(nn.Module):
    """The Hiera trunk: ``forward(x) -> [stride 4, 8, 16, 32 features]`` (``[B, C_i, H_i, W_i]``, finest first);
    ``channel_list`` gives their widths coarsest first, as the neck takes them."""

    def __init__(self, embed_dim: int = 96, num_heads: int = 1, *, in_chans: int = 3, q_pool: int = 3,
                 q_stride: tuple[int, int] = (2, 2), stages: Sequence[int] = (2, 3, 16, 3), dim_mul: float = 2.0,
                 head_mul: float = 2.0, window_pos_embed_bkg_spatial_size: Sequence[int] = (14, 14),
                 window_spec: Sequence[int] = (8, 4, 14, 7), global_att_blocks: Sequence[int] = (12, 16, 20)) -> None:
        super().__init__()
        if len(stages) != len(window_spec):
            raise ConfigError(f"Hiera needs a window size per stage: {len(stages)} stages, window_spec {tuple(window_spec)}")
        self.stage_ends = [sum(stages[:i]) - 1 for i in range(1, len(stages) + 1)]
        if not 0 <= q_pool <= len(stages) - 1:
            raise ConfigError(f"q_pool {q_pool}: between 0 and {len(stages) - 1} (the stage changes)")
        pooled = [end + 1 for end in self.stage_ends[:-1]][:q_pool]
        self.window_spec, self.global_att_blocks = tuple(window_spec), tuple(global_att_blocks)
        self.patch_embed = PatchEmbed(in_chans, embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, embed_dim, *window_pos_embed_bkg_spatial_size))
        self.pos_embed_window = nn.Parameter(torch.zeros(1, embed_dim, window_spec[0], window_spec[0]))
        self.blocks = nn.ModuleList()
        stage = 0
        for i in range(sum(stages)):
            dim_out = embed_dim
            # the window lags a block: a stage's first block pools with the previous stage's window
            window = 0 if i in self.global_att_blocks else self.window_spec[stage]
            if i - 1 in self.stage_ends:
                dim_out, num_heads, stage = int(embed_dim * dim_mul), int(num_heads * head_mul), stage + 1
            self.blocks.append(MultiScaleBlock(embed_dim, dim_out, num_heads, q_stride=q_stride if i in pooled else None,
                                               window_size=window))
            embed_dim = dim_out
        self.channel_list = [self.blocks[i].dim_out for i in self.stage_ends[::-1]]

    def position_embedding(self, size: tuple[int, int]) -> torch.Tensor:
        """The background embedding resized to the token grid plus the window embedding tiled over it, ``[1, H, W, C]``."""
        background = F.interpolate(self.pos_embed, size=size, mode="bicubic")
        window = self.pos_embed_window
        tiled = window.tile([b // w for b, w in zip(background.shape, window.shape)])
        return (background + tiled).permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(x)
        x = x + self.position_embedding(tuple(x.shape[1:3]))
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.stage_ends:
                outputs.append(x.permute(0, 3, 1, 2))
        return outputs


class PositionEmbeddingSine(nn.Module):
    """The sine positional encoding of a feature map (DETR's, normalised to the map): ``[B, C, H, W]`` ->
    ``[B, num_pos_feats, H, W]`` (y then x halves). No parameters."""

    def __init__(self, num_pos_feats: int, temperature: int = 10000) -> None:
        super().__init__()
        if num_pos_feats % 2:
            raise ConfigError(f"num_pos_feats {num_pos_feats}: an even width (half for y, half for x)")
        self.half, self.temperature = num_pos_feats // 2, temperature
        self._cache: dict[tuple[int, int, torch.device], torch.Tensor] = {}

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        key = (height, width, x.device)
        if key not in self._cache:
            scale, eps = 2 * math.pi, 1e-6
            y = torch.arange(1, height + 1, dtype=torch.float32, device=x.device)
            x_positions = torch.arange(1, width + 1, dtype=torch.float32, device=x.device)
            y = (y / (y[-1] + eps) * scale)[:, None].expand(height, width)
            x_positions = (x_positions / (x_positions[-1] + eps) * scale)[None, :].expand(height, width)
            dim_t = torch.arange(self.half, dtype=torch.float32, device=x.device)
            dim_t = self.temperature ** (2 * (dim_t // 2) / self.half)

            def encode(values: torch.Tensor) -> torch.Tensor:
                angles = values[..., None] / dim_t
                return torch.stack((angles[..., 0::2].sin(), angles[..., 1::2].cos()), dim=-1).flatten(-2)

            self._cache[key] = torch.cat((encode(y), encode(x_positions)), dim=-1).permute(2, 0, 1)
        return self._cache[key][None].repeat(batch, 1, 1, 1)


class FpnNeck(nn.Module):
    """Each trunk level (coarsest first in ``backbone_channel_list``) projected to ``d_model`` by a 1x1 convolution;
    the levels in ``fpn_top_down_levels`` (finest is 0) add the coarser output upsampled 2x; returns the levels
    finest first and their sine positional encodings."""

    def __init__(self, d_model: int, backbone_channel_list: Sequence[int], *, fpn_top_down_levels: Sequence[int] | None = None,
                 fpn_interp_model: str = "nearest") -> None:
        super().__init__()
        self.position_encoding = PositionEmbeddingSine(d_model)
        self.convs = nn.ModuleList()
        for dim in backbone_channel_list:
            level = nn.Sequential()
            level.add_module("conv", nn.Conv2d(dim, d_model, kernel_size=1))
            self.convs.append(level)
        self.backbone_channel_list = list(backbone_channel_list)
        self.top_down = set(range(len(self.convs)) if fpn_top_down_levels is None else fpn_top_down_levels)
        self.interpolation = fpn_interp_model

    def forward(self, xs: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        count = len(self.convs)
        if len(xs) != count:
            raise ValueError(f"the neck takes {count} levels, got {len(xs)}")
        out: list[torch.Tensor] = [None] * count
        previous = None
        for i in range(count - 1, -1, -1):  # coarse to fine
            lateral = self.convs[count - 1 - i](xs[i])
            if i in self.top_down and previous is not None:
                upsampled = F.interpolate(previous.float(), scale_factor=2.0, mode=self.interpolation,
                                          align_corners=None if self.interpolation == "nearest" else False)
                previous = lateral + upsampled
            else:
                previous = lateral
            out[i] = previous
        return out, [self.position_encoding(level).to(level.dtype) for level in out]


class Sam2ImageEncoder(nn.Module):
    """Trunk + neck: ``forward(x)`` -> ``{"vision_features": [B, d, H/16, W/16], "vision_pos_enc": [...],
    "backbone_fpn": [stride 4, 8, 16 levels]}`` (``scalp`` coarsest levels dropped: SAM 2 uses three)."""

    def __init__(self, trunk: Hiera, neck: FpnNeck, scalp: int = 1) -> None:
        super().__init__()
        if trunk.channel_list != neck.backbone_channel_list:
            raise ConfigError(f"the trunk's widths {trunk.channel_list} differ from the neck's {neck.backbone_channel_list}")
        self.trunk, self.neck, self.scalp = trunk, neck, scalp

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        features, positions = self.neck(self.trunk(x))
        if self.scalp > 0:
            features, positions = features[: -self.scalp], positions[: -self.scalp]
        return {"vision_features": features[-1], "vision_pos_enc": positions, "backbone_fpn": features}


def hiera_image_encoder(size: str | None = None, *, d_model: int = 256, scalp: int = 1, **trunk_options) -> Sam2ImageEncoder:
    """SAM 2's image encoder: a released trunk (``size``: tiny, small, base_plus, large) or any configuration
    (``trunk_options`` override the size's), with SAM 2's neck (top-down on the two finest levels, nearest upsampling)."""
    if size is not None and size not in HIERA_SIZES:
        raise ConfigError(f"Hiera size {size!r} is unknown; choose one of {', '.join(HIERA_SIZES)}")
    trunk = Hiera(**{**(HIERA_SIZES[size] if size else {}), **trunk_options})
    neck = FpnNeck(d_model, trunk.channel_list, fpn_top_down_levels=(2, 3))
    return Sam2ImageEncoder(trunk, neck, scalp=scalp)
