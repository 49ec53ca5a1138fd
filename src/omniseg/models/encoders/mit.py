"""Mix Transformer (MiT-B0..B5), the hierarchical encoder of SegFormer (Xie et al., NeurIPS 2021).

Module names follow the authors' release (``patch_embed1.proj``, ``block1.0.attn.sr``, ``norm1`` ...),
so their ImageNet checkpoints (``mit_b0.pth`` ...) load as they are, without unpickling.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from timm.layers import DropPath, trunc_normal_
from torch import nn
from torch.nn import functional as F

from omniseg.errors import ConfigError
from omniseg.models.encoders.weights import adapt_first_conv, read_state_dict


@dataclass(frozen=True)
class MiTConfig:
    dims: tuple[int, int, int, int]
    depths: tuple[int, int, int, int]
    heads: tuple[int, int, int, int] = (1, 2, 5, 8)
    sr_ratios: tuple[int, int, int, int] = (8, 4, 2, 1)
    mlp_ratio: int = 4


MIT_CONFIGS = {
    "mit_b0": MiTConfig((32, 64, 160, 256), (2, 2, 2, 2)),
    "mit_b1": MiTConfig((64, 128, 320, 512), (2, 2, 2, 2)),
    "mit_b2": MiTConfig((64, 128, 320, 512), (3, 4, 6, 3)),
    "mit_b3": MiTConfig((64, 128, 320, 512), (3, 4, 18, 3)),
    "mit_b4": MiTConfig((64, 128, 320, 512), (3, 8, 27, 3)),
    "mit_b5": MiTConfig((64, 128, 320, 512), (3, 6, 40, 3)),
}


class OverlapPatchEmbed(nn.Module):
    """Strided convolution with overlapping windows (7x7/4 first, 3x3/2 after) + LayerNorm -> tokens."""

    def __init__(self, in_channels: int, dim: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size, stride, kernel_size // 2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        x = self.proj(x)
        height, width = x.shape[-2:]
        return self.norm(x.flatten(2).transpose(1, 2)), height, width


class EfficientSelfAttention(nn.Module):
    """Multi-head attention whose keys and values come from a sequence shortened by ``sr_ratio``^2
    (a strided conv over the token grid), which makes attention affordable at 1/4 resolution."""

    def __init__(self, dim: int, heads: int, sr_ratio: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sr_ratio, sr_ratio)
            self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        n, length, dim = x.shape
        q = self.q(x).reshape(n, length, self.heads, dim // self.heads).transpose(1, 2)
        source = x
        if self.sr_ratio > 1:
            grid = x.transpose(1, 2).reshape(n, dim, height, width)
            source = self.norm(self.sr(grid).flatten(2).transpose(1, 2))
        k, v = self.kv(source).reshape(n, -1, 2, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(n, length, dim))


class MixFFN(nn.Module):
    """Linear -> 3x3 depthwise conv on the token grid -> GELU -> Linear: the conv leaks position
    information, so MiT needs no position embedding and works at any resolution."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = nn.Module()
        self.dwconv.dwconv = nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden)  # the release's nesting
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        x = self.fc1(x)
        n, length, hidden = x.shape
        x = self.dwconv.dwconv(x.transpose(1, 2).reshape(n, hidden, height, width)).flatten(2).transpose(1, 2)
        return self.fc2(self.act(x))


class MiTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, sr_ratio: int, mlp_ratio: int, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = EfficientSelfAttention(dim, heads, sr_ratio)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MixFFN(dim, dim * mlp_ratio)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), height, width))
        return x + self.drop_path(self.mlp(self.norm2(x), height, width))


class MixTransformer(nn.Module):
    """MiT encoder: four stages at strides 4, 8, 16, 32, each patch embedding -> blocks -> LayerNorm.

    Args:
        variant: ``"mit_b0"`` .. ``"mit_b5"``.
        in_channels: input channels.
        weights: ``None`` or a file of the authors' ImageNet weights (``.safetensors``, or ``.pth``
            read with ``torch.load(weights_only=True)``); the classifier ``head.*`` is dropped, every
            other tensor must match.
        drop_path_rate: stochastic depth, rising linearly over the blocks (0.1 in the paper).

    ``forward(x) -> list[Tensor]`` of 4 maps; ``channels`` and ``strides`` describe them.
    """

    def __init__(self, variant: str = "mit_b0", *, in_channels: int = 3, weights: str | None = None,
                 drop_path_rate: float = 0.1) -> None:
        super().__init__()
        if variant not in MIT_CONFIGS:
            raise ConfigError(f"unknown MiT variant {variant!r}; choose one of {', '.join(MIT_CONFIGS)}")
        cfg = MIT_CONFIGS[variant]
        total = sum(cfg.depths)
        rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        start = 0
        for stage, (dim, depth, heads, sr) in enumerate(zip(cfg.dims, cfg.depths, cfg.heads, cfg.sr_ratios), 1):
            previous = in_channels if stage == 1 else cfg.dims[stage - 2]
            kernel, stride = (7, 4) if stage == 1 else (3, 2)
            setattr(self, f"patch_embed{stage}", OverlapPatchEmbed(previous, dim, kernel, stride))
            setattr(self, f"block{stage}", nn.ModuleList(
                MiTBlock(dim, heads, sr, cfg.mlp_ratio, rates[start + i]) for i in range(depth)))
            setattr(self, f"norm{stage}", nn.LayerNorm(dim))
            start += depth
        self.channels, self.strides = list(cfg.dims), [4, 8, 16, 32]
        self.apply(_init)
        if weights is not None:
            self.load_pretrained(Path(weights))

    def load_pretrained(self, path: Path) -> None:
        state = {k: v for k, v in read_state_dict(path, "MiT weights").items() if not k.startswith("head.")}
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        first = "patch_embed1.proj.weight"
        wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape and k != first)
        if missing or unexpected or wrong:
            raise ConfigError(f"MiT weights {path} do not fit this model (missing {missing[:3]}, unexpected "
                              f"{unexpected[:3]}, wrong shape {wrong[:3]}); pass the file of the same variant")
        state[first] = adapt_first_conv(state[first], own[first].shape[1])
        self.load_state_dict(state)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for stage in range(1, 5):
            tokens, height, width = getattr(self, f"patch_embed{stage}")(x)
            for block in getattr(self, f"block{stage}"):
                tokens = block(tokens, height, width)
            tokens = getattr(self, f"norm{stage}")(tokens)
            x = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, height, width)
            features.append(x)
        return features


def _init(module: nn.Module) -> None:
    """The release's initialisation: truncated normal linears, unit LayerNorms, He-style convs."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
        nn.init.normal_(module.weight, 0, (2.0 / fan_out) ** 0.5)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
