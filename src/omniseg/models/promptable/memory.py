"""Segment Anything 2's streaming memory: the memory encoder (a frame's features fused with its predicted mask into a
small memory map) and memory attention (the current frame's features attend to themselves, then to the memories of
earlier frames and to object pointers, with 2D rotary position encoding on the spatial tokens).

Module and parameter names are those of the official release, so its checkpoints' ``memory_encoder.*`` and
``memory_attention.*`` keys load unchanged.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn import functional as F

from omniseg.errors import ConfigError
from omniseg.models.promptable.blocks import LayerNorm2d, attend
from omniseg.models.promptable.hiera import PositionEmbeddingSine


class MaskDownSampler(nn.Module):
    """A mask ``[B, 1, H, W]`` down to ``[B, embed_dim, H/16, W/16]``: strided convolutions (each multiplying the
    channels by ``stride^2``) with channel LayerNorm and GELU, then a 1x1 projection."""

    def __init__(self, embed_dim: int = 256, kernel_size: int = 3, stride: int = 2, padding: int = 1, total_stride: int = 16) -> None:
        super().__init__()
        layers = round(math.log(total_stride, stride))
        if stride ** layers != total_stride:
            raise ConfigError(f"the mask downsampler's stride {stride} does not reach the total stride {total_stride}")
        self.encoder = nn.Sequential()
        channels = 1
        for _ in range(layers):
            out = channels * stride ** 2
            self.encoder.extend([nn.Conv2d(channels, out, kernel_size, stride, padding), LayerNorm2d(out), nn.GELU()])
            channels = out
        self.encoder.append(nn.Conv2d(channels, embed_dim, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


class CXBlock(nn.Module):
    """A ConvNeXt block: depth-wise 7x7 convolution, channel LayerNorm, a GELU MLP over channels, layer scale ``gamma``,
    residual."""

    def __init__(self, dim: int, kernel_size: int = 7, padding: int = 3, layer_scale_init_value: float = 1e-6,
                 use_dwconv: bool = True) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=kernel_size, padding=padding, groups=dim if use_dwconv else 1)
        self.norm = LayerNorm2d(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(layer_scale_init_value * torch.ones(dim)) if layer_scale_init_value > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pwconv2(self.act(self.pwconv1(self.norm(self.dwconv(x)).permute(0, 2, 3, 1))))
        if self.gamma is not None:
            y = self.gamma * y
        return x + y.permute(0, 3, 1, 2)


class Fuser(nn.Module):
    """``num_layers`` copies of ``layer`` in sequence (after an optional 1x1 input projection)."""

    def __init__(self, layer: nn.Module, num_layers: int, dim: int | None = None, input_projection: bool = False) -> None:
        super().__init__()
        self.proj = nn.Conv2d(dim, dim, kernel_size=1) if input_projection else nn.Identity()
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        for layer in self.layers:
            x = layer(x)
        return x


class MemoryEncoder(nn.Module):
    """A frame's features ``[B, in_dim, h, w]`` and its mask logits ``[B, 1, 16h, 16w]`` -> the frame's memory
    ``{"vision_features": [B, out_dim, h, w], "vision_pos_enc": [positions]}``."""

    def __init__(self, out_dim: int = 64, in_dim: int = 256, *, fuser_layers: int = 2) -> None:
        super().__init__()
        self.mask_downsampler = MaskDownSampler(in_dim, kernel_size=3, stride=2, padding=1)
        self.pix_feat_proj = nn.Conv2d(in_dim, in_dim, kernel_size=1)
        self.fuser = Fuser(CXBlock(in_dim), fuser_layers)
        self.position_encoding = PositionEmbeddingSine(out_dim)
        self.out_proj = nn.Conv2d(in_dim, out_dim, kernel_size=1) if out_dim != in_dim else nn.Identity()

    def forward(self, pix_feat: torch.Tensor, masks: torch.Tensor, skip_mask_sigmoid: bool = False) -> dict:
        masks = self.mask_downsampler(masks if skip_mask_sigmoid else torch.sigmoid(masks))
        x = self.out_proj(self.fuser(self.pix_feat_proj(pix_feat.to(masks.device)) + masks))
        return {"vision_features": x, "vision_pos_enc": [self.position_encoding(x).to(x.dtype)]}


def axial_rope_angles(dim: int, width: int, height: int, theta: float = 10000.0) -> torch.Tensor:
    """The rotation angles ``[width * height, dim / 2]`` of 2D axial RoPE over a row-major grid: the first quarter of
    a head's width rotates with the column, the second with the row (pairs of adjacent channels rotate together)."""
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 4)[: dim // 4].float() / dim))
    t = torch.arange(width * height, dtype=torch.float32)
    return torch.cat([torch.outer(t % width, freqs), torch.outer(torch.div(t, width, rounding_mode="floor"), freqs)], dim=-1)


def rotate(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """``x`` ``[..., n, d]`` with each pair of adjacent channels ``(2i, 2i+1)`` rotated by ``angles[n, i]`` (in float32)."""
    pairs = x.float().reshape(*x.shape[:-1], -1, 2)
    cos, sin = angles.cos(), angles.sin()
    real = pairs[..., 0] * cos - pairs[..., 1] * sin
    imag = pairs[..., 0] * sin + pairs[..., 1] * cos
    return torch.stack((real, imag), dim=-1).flatten(-2).type_as(x)


class RoPEAttention(nn.Module):
    """Multi-head attention with 2D rotary positions on a square grid of queries; keys are ``rope_k_repeat`` times as
    many (memories of several frames, each the query grid) and their last ``num_k_exclude_rope`` (object pointers)
    are not rotated. ``kv_in_dim`` is the keys' and values' width (the memories are narrower)."""

    def __init__(self, embedding_dim: int, num_heads: int, downsample_rate: int = 1, dropout: float = 0.0,
                 kv_in_dim: int | None = None, *, rope_theta: float = 10000.0, rope_k_repeat: bool = False) -> None:
        super().__init__()
        self.internal_dim, self.num_heads = embedding_dim // downsample_rate, num_heads
        if self.internal_dim % num_heads:
            raise ConfigError(f"{num_heads} heads do not divide the attention width {self.internal_dim}")
        kv_in_dim = kv_in_dim or embedding_dim
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(kv_in_dim, self.internal_dim)
        self.v_proj = nn.Linear(kv_in_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)
        self.dropout_p, self.rope_theta, self.rope_k_repeat = dropout, rope_theta, rope_k_repeat
        self._angles: dict[tuple[int, torch.device], torch.Tensor] = {}

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        return x.reshape(batch, tokens, self.num_heads, width // self.num_heads).transpose(1, 2)

    def angles(self, tokens: int, device: torch.device) -> torch.Tensor:
        key = (tokens, device)
        if key not in self._angles:
            side = math.isqrt(tokens)
            if side * side != tokens:
                raise ValueError(f"rotary positions need a square grid of queries, got {tokens} tokens")
            self._angles[key] = axial_rope_angles(self.internal_dim // self.num_heads, side, side, self.rope_theta).to(device)
        return self._angles[key]

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_k_exclude_rope: int = 0) -> torch.Tensor:
        q, k, v = self._heads(self.q_proj(q)), self._heads(self.k_proj(k)), self._heads(self.v_proj(v))
        angles = self.angles(q.shape[-2], q.device)
        q = rotate(q, angles)
        rotated = k.shape[-2] - num_k_exclude_rope
        if rotated > 0:
            repeat = rotated // q.shape[-2]
            if repeat != 1 and not self.rope_k_repeat:
                raise ValueError(f"{rotated} rotated keys for {q.shape[-2]} queries: only repeated-grid keys (rope_k_repeat) differ")
            k = torch.cat([rotate(k[:, :, :rotated], angles.repeat(repeat, 1)), k[:, :, rotated:]], dim=2)
        out = attend(q, k, v, dropout=self.dropout_p if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(out.shape[0], -1, self.internal_dim))


class MemoryAttentionLayer(nn.Module):
    """Pre-norm: self-attention of the frame's tokens, cross-attention to the memories (with their positions on the
    keys), a ReLU feed-forward layer."""

    def __init__(self, d_model: int = 256, dim_feedforward: int = 2048, dropout: float = 0.1, *, num_heads: int = 1,
                 kv_in_dim: int = 64, rope_theta: float = 10000.0) -> None:
        super().__init__()
        self.self_attn = RoPEAttention(d_model, num_heads, dropout=dropout, rope_theta=rope_theta)
        self.cross_attn_image = RoPEAttention(d_model, num_heads, dropout=dropout, kv_in_dim=kv_in_dim, rope_theta=rope_theta,
                                              rope_k_repeat=True)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d_model), nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.dropout1, self.dropout2, self.dropout3 = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor, pos: torch.Tensor, query_pos: torch.Tensor | None = None,
                num_k_exclude_rope: int = 0) -> torch.Tensor:
        normed = self.norm1(tgt)
        tgt = tgt + self.dropout1(self.self_attn(normed, normed, normed))
        tgt = tgt + self.dropout2(self.cross_attn_image(self.norm2(tgt), memory + pos, memory, num_k_exclude_rope=num_k_exclude_rope))
        return tgt + self.dropout3(self.linear2(self.dropout(F.relu(self.linear1(self.norm3(tgt))))))


class MemoryAttention(nn.Module):
    """The current frame's tokens ``curr`` ``[HW, B, d]`` (with positions ``curr_pos``) conditioned on ``memory``
    ``[M, B, mem_dim]`` (with ``memory_pos``), whose last ``num_obj_ptr_tokens`` are object pointers -> ``[HW, B, d]``."""

    def __init__(self, d_model: int = 256, num_layers: int = 4, *, dim_feedforward: int = 2048, dropout: float = 0.1,
                 num_heads: int = 1, kv_in_dim: int = 64, rope_theta: float = 10000.0) -> None:
        super().__init__()
        layer = MemoryAttentionLayer(d_model, dim_feedforward, dropout, num_heads=num_heads, kv_in_dim=kv_in_dim,
                                     rope_theta=rope_theta)
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)

    def forward(self, curr: torch.Tensor, memory: torch.Tensor, curr_pos: torch.Tensor | None = None,
                memory_pos: torch.Tensor | None = None, num_obj_ptr_tokens: int = 0) -> torch.Tensor:
        if isinstance(curr, list):
            (curr,), (curr_pos,) = curr, curr_pos
        if curr.shape[1] != memory.shape[1]:
            raise ValueError(f"the frame's batch {curr.shape[1]} differs from the memory's {memory.shape[1]}")
        output = curr if curr_pos is None else curr + 0.1 * curr_pos
        output, memory, memory_pos = output.transpose(0, 1), memory.transpose(0, 1), memory_pos.transpose(0, 1)
        for layer in self.layers:
            output = layer(output, memory, memory_pos, num_k_exclude_rope=num_obj_ptr_tokens)
        return self.norm(output).transpose(0, 1)
