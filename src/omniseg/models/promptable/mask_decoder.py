"""SAM's mask decoder: a two-way transformer between prompt tokens and the image embedding, then masks from
hypernetwork weights on an upscaled embedding, and an IoU prediction per mask (one single-prompt mask token
plus three for ambiguous prompts)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from omniseg.models.promptable.blocks import MLP, LayerNorm2d, MLPBlock, attend
from omniseg.errors import ConfigError


class Attention(nn.Module):
    """Multi-head attention whose projections may shrink the width by ``downsample_rate``."""

    def __init__(self, embedding_dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        if self.internal_dim % num_heads:
            raise ConfigError(f"{num_heads} heads do not divide the attention width {self.internal_dim}")
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.v_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        return x.reshape(batch, tokens, self.num_heads, width // self.num_heads).transpose(1, 2)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, q_pe: torch.Tensor | None = None,
                k_pe: torch.Tensor | None = None) -> torch.Tensor:
        """Attention of ``q + q_pe`` to ``k + k_pe`` over values ``v`` (the positional terms are optional)."""
        q, k, v = project(self.q_proj, q, q_pe), project(self.k_proj, k, k_pe), self.v_proj(v)
        batch, tokens = max(q.shape[0], k.shape[0]), q.shape[1]
        if k.shape[0] == 1 and q.shape[0] > 1:
            # keys shared by every prompt (the image before it has seen the tokens): one attention of all queries
            out = attend(self._heads(q.reshape(1, -1, self.internal_dim)), self._heads(k), self._heads(v))
        else:
            out = attend(self._heads(q).expand(batch, -1, -1, -1), self._heads(k), self._heads(v))
        return self.out_proj(out.transpose(1, 2).reshape(batch, tokens, self.internal_dim))


def project(linear: nn.Linear, x: torch.Tensor, pe: torch.Tensor | None) -> torch.Tensor:
    """``linear(x + pe)``; when one positional map ``pe`` [1, N, D] serves a batch, its projection is computed
    once and added inside the batched product, so ``x + pe`` is never materialised for every prompt."""
    if pe is None:
        return linear(x)
    if pe.shape[0] == 1 and x.shape[0] > 1:
        return torch.baddbmm(F.linear(pe, linear.weight, linear.bias), x, linear.weight.t().expand(x.shape[0], -1, -1))
    return linear(x + pe)


class TwoWayAttentionBlock(nn.Module):
    """Token self-attention, tokens -> image cross-attention, token MLP, image -> tokens cross-attention."""

    def __init__(self, embedding_dim: int, num_heads: int, mlp_dim: int = 2048, activation: type[nn.Module] = nn.ReLU,
                 attention_downsample_rate: int = 2, skip_first_layer_pe: bool = False, mlp_layers: bool = False) -> None:
        super().__init__()
        self.self_attn = Attention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(embedding_dim, num_heads, attention_downsample_rate)
        self.norm2 = nn.LayerNorm(embedding_dim)
        # the same two layers, named lin1/lin2 in SAM's release and layers.0/1 in SAM 2's
        self.mlp = MLP(embedding_dim, mlp_dim, embedding_dim, 2, act=activation) if mlp_layers else MLPBlock(embedding_dim, mlp_dim, activation)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(embedding_dim, num_heads, attention_downsample_rate)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor,
                key_pe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)
        queries = self.norm2(queries + self.cross_attn_token_to_image(queries + query_pe, keys, keys, k_pe=key_pe))
        queries = self.norm3(queries + self.mlp(queries))
        keys = self.norm4(keys + self.cross_attn_image_to_token(keys, queries + query_pe, queries, q_pe=key_pe))
        return queries, keys


class TwoWayTransformer(nn.Module):
    """``depth`` two-way blocks and a final tokens -> image attention."""

    def __init__(self, *, depth: int, embedding_dim: int, num_heads: int, mlp_dim: int,
                 activation: type[nn.Module] = nn.ReLU, attention_downsample_rate: int = 2, mlp_layers: bool = False) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(embedding_dim, num_heads, mlp_dim, activation, attention_downsample_rate, skip_first_layer_pe=i == 0,
                                 mlp_layers=mlp_layers)
            for i in range(depth))
        self.final_attn_token_to_image = Attention(embedding_dim, num_heads, attention_downsample_rate)
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(self, image_embedding: torch.Tensor, image_pe: torch.Tensor,
                point_embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keys = image_embedding.flatten(2).permute(0, 2, 1)
        key_pe = image_pe.flatten(2).permute(0, 2, 1)
        queries = point_embedding
        for layer in self.layers:
            queries, keys = layer(queries, keys, point_embedding, key_pe)
        attended = self.final_attn_token_to_image(queries + point_embedding, keys, keys, k_pe=key_pe)
        return self.norm_final_attn(queries + attended), keys


class MaskDecoder(nn.Module):
    """Prompt tokens + image embedding -> mask logits ``[B, 4, 4h, 4w]`` and IoU predictions ``[B, 4]`` (token 0:
    the single-mask output; tokens 1..3: the multimask outputs)."""

    def __init__(self, *, transformer_dim: int, transformer: nn.Module, num_multimask_outputs: int = 3,
                 iou_head_depth: int = 3, iou_head_hidden_dim: int = 256) -> None:
        super().__init__()
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_multimask_outputs = num_multimask_outputs
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.num_mask_tokens = num_multimask_outputs + 1
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4), nn.GELU(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2), nn.GELU())
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3) for _ in range(self.num_mask_tokens))
        self.iou_prediction_head = MLP(transformer_dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth)

    def predict_masks(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor, sparse_prompt_embeddings: torch.Tensor,
                      dense_prompt_embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """All mask tokens' logits and IoU predictions. ``image_embeddings`` is ``[1, D, h, w]`` (shared by
        every prompt) or ``[B, D, h, w]``; or, from an encoder with high-resolution features, the tuple
        ``(embedding, features at 2x, features at 4x)`` with ``D / 4`` and ``D / 8`` channels, added to the upscaling
        path at those resolutions (SAM 2's high-resolution features) for sharper mask boundaries."""
        masks, iou, _, _ = self.decode(image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings)
        return masks, iou

    def output_tokens(self) -> torch.Tensor:
        """The learned output tokens, before the prompt tokens: IoU, then the mask tokens."""
        return torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)

    def decode(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor, sparse_prompt_embeddings: torch.Tensor,
               dense_prompt_embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(masks, IoU predictions, the mask tokens out, every output token out)`` (see :meth:`predict_masks`)."""
        image_embeddings, *high_res = image_embeddings if isinstance(image_embeddings, tuple) else (image_embeddings,)
        batch = sparse_prompt_embeddings.shape[0]
        output_tokens = self.output_tokens()
        first = output_tokens.shape[0] - self.num_mask_tokens - 1  # the IoU token's index (SAM 2 puts one before it)
        tokens = torch.cat([output_tokens.unsqueeze(0).expand(batch, -1, -1), sparse_prompt_embeddings], dim=1)
        if dense_prompt_embeddings.stride(0) == 0:  # one dense embedding for every prompt (no mask prompts)
            dense_prompt_embeddings = dense_prompt_embeddings[:1]
        # an image shared by every prompt stays one map until the tokens have written into it (the first block)
        src = image_embeddings + dense_prompt_embeddings
        _, channels, height, width = src.shape
        hs, keys = self.transformer(src, image_pe, tokens)
        mask_tokens_out = hs[:, first + 1: first + 1 + self.num_mask_tokens]
        # the tokens [B, hw, C] viewed as a channels-last map: no copy before the transposed convolutions
        embedded = keys.view(batch, height, width, channels).permute(0, 3, 1, 2)
        if high_res:
            up1, norm, act, up2, act_out = self.output_upscaling
            upscaled = act_out(up2(act(norm(up1(embedded) + high_res[0]))) + high_res[1])
        else:
            upscaled = self.output_upscaling(embedded)
        hyper_in = torch.stack([mlp(mask_tokens_out[:, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1)
        _, c, h, w = upscaled.shape
        masks = (hyper_in @ upscaled.reshape(batch, c, h * w)).view(batch, -1, h, w)
        return masks, self.iou_prediction_head(hs[:, first]), mask_tokens_out, hs

    def forward(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor, sparse_prompt_embeddings: torch.Tensor,
                dense_prompt_embeddings: torch.Tensor, multimask_output: bool) -> tuple[torch.Tensor, torch.Tensor]:
        masks, iou = self.predict_masks(image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings)
        keep = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, keep], iou[:, keep]
