"""SAM's prompt encoder: points (positive, negative), box corners and a low-resolution mask prompt become
sparse tokens and a dense embedding; positions are encoded with random Fourier features."""

from __future__ import annotations

import math

import torch
from torch import nn

from omniseg.models.promptable.blocks import LayerNorm2d


class PositionEmbeddingRandom(nn.Module):
    """Random Fourier features of 0..1 coordinates: ``[sin(2 pi (2c - 1) G), cos(...)]``, ``G ~ N(0, scale^2)``."""

    def __init__(self, num_pos_feats: int = 64, scale: float | None = None) -> None:
        super().__init__()
        scale = scale if scale is not None and scale > 0 else 1.0
        self.register_buffer("positional_encoding_gaussian_matrix", scale * torch.randn((2, num_pos_feats)))

    def encode(self, coords: torch.Tensor) -> torch.Tensor:
        """Features ``[..., 2 * num_pos_feats]`` of coordinates ``[..., 2]`` (x, y) in 0..1."""
        projected = 2 * math.pi * ((2 * coords - 1) @ self.positional_encoding_gaussian_matrix)
        return torch.cat([torch.sin(projected), torch.cos(projected)], dim=-1)

    def forward(self, size: tuple[int, int]) -> torch.Tensor:
        """The features of every cell centre of an ``(h, w)`` grid: ``[C, h, w]``."""
        h, w = size
        device = self.positional_encoding_gaussian_matrix.device
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
        grid = torch.stack([xs[None, :].expand(h, w), ys[:, None].expand(h, w)], dim=-1)
        return self.encode(grid).permute(2, 0, 1)

    def forward_with_coords(self, coords: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """Features of pixel coordinates ``[B, N, 2]`` (x, y) in an image of ``image_size`` (h, w)."""
        scale = torch.tensor([1.0 / image_size[1], 1.0 / image_size[0]], device=coords.device)
        return self.encode(coords.float() * scale)


class PromptEncoder(nn.Module):
    """Prompts -> ``(sparse [B, N, D], dense [B, D, h, w])`` for the mask decoder.

    Point labels: 1 positive, 0 negative, -1 padding (no point); box corners are embedded as labels 2 and 3.
    """

    def __init__(self, *, embed_dim: int, image_embedding_size: tuple[int, int], input_image_size: tuple[int, int],
                 mask_in_chans: int = 16) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.input_image_size = tuple(input_image_size)
        self.image_embedding_size = tuple(image_embedding_size)
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        self.num_point_embeddings = 4  # negative, positive, box top-left, box bottom-right
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(self.num_point_embeddings))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_input_size = (4 * image_embedding_size[0], 4 * image_embedding_size[1])
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2), LayerNorm2d(mask_in_chans // 4), nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2), LayerNorm2d(mask_in_chans), nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1))
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def get_dense_pe(self) -> torch.Tensor:
        """The positional features of the image embedding's grid, ``[1, D, h, w]``."""
        return self.pe_layer(self.image_embedding_size).unsqueeze(0)

    def embed_points(self, points: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Tokens of points ``[B, N, 2]`` (input-frame pixels) with labels ``[B, N]`` in -1..3."""
        features = self.pe_layer.forward_with_coords(points + 0.5, self.input_image_size)
        labels = labels[..., None]
        features = torch.where(labels == -1, self.not_a_point_embed.weight, features)
        for value, embedding in enumerate(self.point_embeddings):
            features = features + embedding.weight * (labels == value)
        return features

    def embed_masks(self, masks: torch.Tensor) -> torch.Tensor:
        """The dense embedding of mask prompts ``[B, 1, 4h, 4w]`` (logits)."""
        return self.mask_downscaling(masks)

    def forward(self, points: tuple[torch.Tensor, torch.Tensor] | None, boxes: torch.Tensor | None,
                masks: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        batch = next((t.shape[0] for t in (points[0] if points is not None else None, boxes, masks) if t is not None), 1)
        device = self.no_mask_embed.weight.device
        tokens = [torch.empty((batch, 0, self.embed_dim), device=device)]
        if points is not None:
            coords, labels = points
            if boxes is None:  # a padding point stands in for the missing box
                coords = torch.cat([coords, torch.zeros_like(coords[:, :1])], dim=1)
                labels = torch.cat([labels, -torch.ones_like(labels[:, :1])], dim=1)
            tokens.append(self.embed_points(coords, labels))
        if boxes is not None:
            corners = boxes.reshape(-1, 2, 2)
            corner_labels = torch.tensor([[2, 3]], device=corners.device).expand(corners.shape[0], 2)
            tokens.append(self.embed_points(corners, corner_labels))
        if masks is not None:
            dense = self.embed_masks(masks)
        else:
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch, -1, *self.image_embedding_size)
        return torch.cat(tokens, dim=1), dense
