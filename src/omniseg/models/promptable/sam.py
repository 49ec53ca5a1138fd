"""Segment Anything (Kirillov et al., 2023): an image encoder run once per image, a prompt encoder and a light
mask decoder; the official ViT-B/L/H releases, MobileSAM (TinyViT) and any smaller configuration.

``create_model("sam_vit_b", checkpoint="sam_vit_b_01ec64.pth")`` builds the architecture and loads an official
checkpoint file unchanged (``torch.load(weights_only=True)`` or safetensors, a strict key and shape check, the
file's sha256 checked against the published one when its name is an official file's).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from omniseg.errors import ConfigError
from omniseg.models.builder import MODELS
from omniseg.models.encoders.weights import read_state_dict
from omniseg.models.hub import check_state_dict
from omniseg.models.promptable.image_encoder import ImageEncoderViT
from omniseg.models.promptable.mask_decoder import MaskDecoder, TwoWayTransformer
from omniseg.models.promptable.official_files import verify_official_file
from omniseg.models.promptable.prompt_encoder import PromptEncoder
from omniseg.models.promptable.sam2 import SAM2_ARCHITECTURE
from omniseg.models.promptable.timm_image_encoder import TimmImageEncoder
from omniseg.models.promptable.tiny_vit import TinyViT

#: sha256 of the official checkpoint files, by file name (published by their users; the releases give none)
#: the architecture of each official file (SAM 2's too), so a checkpoint with its official name needs no ``arch``
OFFICIAL_ARCHITECTURE = {"sam_vit_b_01ec64.pth": "sam_vit_b", "sam_vit_l_0b3195.pth": "sam_vit_l",
                         "sam_vit_h_4b8939.pth": "sam_vit_h", "mobile_sam.pt": "mobile_sam", **SAM2_ARCHITECTURE}

#: the official encoders: (embed_dim, depth, num_heads, global_attn_indexes)
VIT_SIZES = {
    "b": (768, 12, 12, (2, 5, 8, 11)),
    "l": (1024, 24, 16, (5, 11, 17, 23)),
    "h": (1280, 32, 16, (7, 15, 23, 31)),
}


class Sam(nn.Module):
    """The three parts and the pixel statistics (0..255 RGB). ``mask_threshold``: logits above it are the mask.

    Inputs are prepared by :class:`omniseg.inference.PromptPredictor`: the longest side resized to ``img_size``,
    normalised and zero-padded to a square (:meth:`preprocess`).
    """

    mask_threshold: float = 0.0
    promptable = True

    def __init__(self, image_encoder: nn.Module, prompt_encoder: PromptEncoder, mask_decoder: MaskDecoder,
                 pixel_mean: Sequence[float] = (123.675, 116.28, 103.53), pixel_std: Sequence[float] = (58.395, 57.12, 57.375)) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(-1, 1, 1), False)

    @property
    def img_size(self) -> int:
        return self.image_encoder.img_size

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise resized 0..255 images ``[N, 3, h, w]`` and zero-pad them to ``img_size`` squares."""
        x = (x - self.pixel_mean) / self.pixel_std
        return F.pad(x, (0, self.img_size - x.shape[-1], 0, self.img_size - x.shape[-2]))

    def postprocess_masks(self, masks: torch.Tensor, input_size: tuple[int, int], original_size: tuple[int, int]) -> torch.Tensor:
        """Low-resolution logits -> logits at the original image size (upscaled, the padding cut, resized)."""
        masks = F.interpolate(masks, (self.img_size, self.img_size), mode="bilinear", align_corners=False)
        masks = masks[..., : input_size[0], : input_size[1]]
        return F.interpolate(masks, tuple(original_size), mode="bilinear", align_corners=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Image embeddings of preprocessed images (what ``set_image`` caches)."""
        return self.image_encoder(images)

    # the contract of promptable models with the prompt predictor (SAM 2 keeps it too)
    @property
    def mask_input_size(self) -> tuple[int, int]:
        return tuple(self.prompt_encoder.mask_input_size)

    def encode_image(self, image: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """``(features, input size)`` of a uint8 ``[3, H, W]`` image: the longest side resized to ``img_size`` (PIL's
        bilinear filter, as SAM's release does), normalised, zero-padded, encoded."""
        height, width = image.shape[-2:]
        new_h, new_w = longest_side_shape(height, width, self.img_size)
        resized = Image.fromarray(image.permute(1, 2, 0).cpu().numpy()).resize((new_w, new_h), Image.BILINEAR)
        x = torch.from_numpy(np.asarray(resized).copy()).to(image.device).permute(2, 0, 1)[None].float()
        return self.image_encoder(self.preprocess(x)), (new_h, new_w)

    def decode_prompts(self, features, points: torch.Tensor | None, labels: torch.Tensor | None, boxes: torch.Tensor | None,
                       mask_input: torch.Tensor | None, multimask: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Low-resolution logits ``[B, C, h, w]`` and IoU predictions ``[B, C]`` for prompts in the input frame."""
        sparse, dense = self.prompt_encoder(None if points is None else (points, labels), boxes, mask_input)
        return self.mask_decoder(features, self.prompt_encoder.get_dense_pe(), sparse, dense, multimask)

    # the training contract (engine/promptable.py): features of preprocessed crops, every output token decoded
    def embed_images(self, x: torch.Tensor):
        """Preprocessed images -> what :meth:`decode_all` takes (the embedding, or with its high-resolution features)."""
        return self.image_encoder(x)

    def decode_all(self, features, sparse: torch.Tensor, dense: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        """``(logits [B, 4, h, w], IoU predictions [B, 4], None)``: the single-mask output, then the three proposals
        (SAM has no object score)."""
        masks, iou = self.mask_decoder.predict_masks(features, self.prompt_encoder.get_dense_pe(), sparse, dense)
        return masks, iou, None


def longest_side_shape(height: int, width: int, longest: int) -> tuple[int, int]:
    """``(h, w)`` with the longest side ``longest`` and the aspect ratio kept (rounded half up, as SAM does)."""
    scale = longest / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def load_sam_checkpoint(model: Sam, checkpoint: str | Path, *, architecture: str = "sam") -> Sam:
    """Load an official (or omniseg-saved) SAM state dict into ``model``: a known official file's sha256 is
    verified, then every key and shape must match."""
    path = Path(checkpoint)
    verify_official_file(path)
    state = read_state_dict(path, f"{architecture} checkpoint")
    check_state_dict(model, state, f"{architecture} checkpoint {path}")
    model.load_state_dict(state)
    return model


def build_sam(image_encoder: nn.Module, *, img_size: int, prompt_embed_dim: int = 256, mask_in_chans: int = 16,
              decoder_depth: int = 2, decoder_mlp_dim: int = 2048, decoder_num_heads: int = 8,
              iou_head_hidden_dim: int = 256, checkpoint: str | Path | None = None, architecture: str = "sam",
              embedding_stride: int = 16) -> Sam:
    """A :class:`Sam` around ``image_encoder`` (any module giving ``[N, prompt_embed_dim, img/s, img/s]`` for the
    ``embedding_stride`` s; the masks come out at ``img/s * 4``)."""
    grid = img_size // embedding_stride
    model = Sam(
        image_encoder,
        PromptEncoder(embed_dim=prompt_embed_dim, image_embedding_size=(grid, grid), input_image_size=(img_size, img_size),
                      mask_in_chans=mask_in_chans),
        MaskDecoder(transformer_dim=prompt_embed_dim, iou_head_hidden_dim=iou_head_hidden_dim,
                    transformer=TwoWayTransformer(depth=decoder_depth, embedding_dim=prompt_embed_dim,
                                                  mlp_dim=decoder_mlp_dim, num_heads=decoder_num_heads)))
    if checkpoint is not None:
        load_sam_checkpoint(model, checkpoint, architecture=architecture)
    return model.eval()


@MODELS.register("sam", task="promptable", description="Segment Anything with a ViT encoder of any size (tiny configurations too)")
def sam(*, img_size: int = 1024, patch_size: int = 16, embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
        global_attn_indexes: Sequence[int] = (2, 5, 8, 11), window_size: int = 14, prompt_embed_dim: int = 256,
        mask_in_chans: int = 16, decoder_depth: int = 2, decoder_mlp_dim: int = 2048, decoder_num_heads: int = 8,
        iou_head_hidden_dim: int = 256, checkpoint: str | None = None) -> Sam:
    """Segment Anything with SAM's ViT image encoder (windowed attention, relative positions) of the given size."""
    if img_size % patch_size or patch_size != 16:
        raise ConfigError(f"img_size {img_size} must be a multiple of the 16 px patches (patch_size {patch_size})")
    encoder = ImageEncoderViT(img_size=img_size, patch_size=patch_size, embed_dim=embed_dim, depth=depth, num_heads=num_heads,
                              out_chans=prompt_embed_dim, window_size=window_size, global_attn_indexes=tuple(global_attn_indexes))
    return build_sam(encoder, img_size=img_size, prompt_embed_dim=prompt_embed_dim, mask_in_chans=mask_in_chans,
                     decoder_depth=decoder_depth, decoder_mlp_dim=decoder_mlp_dim, decoder_num_heads=decoder_num_heads,
                     iou_head_hidden_dim=iou_head_hidden_dim, checkpoint=checkpoint)


def _official_vit(size: str):
    embed_dim, depth, heads, global_indexes = VIT_SIZES[size]

    def builder(*, checkpoint: str | None = None) -> Sam:
        return sam(embed_dim=embed_dim, depth=depth, num_heads=heads, global_attn_indexes=global_indexes, checkpoint=checkpoint)

    builder.__doc__ = f"SAM ViT-{size.upper()} as released (1024 px; checkpoint: the official sam_vit_{size}_*.pth)."
    return builder


for _size in VIT_SIZES:
    MODELS.add(f"sam_vit_{_size}", _official_vit(_size), task="promptable",
               description=f"Segment Anything ViT-{_size.upper()} (official checkpoint layout)")


@MODELS.register("mobile_sam", task="promptable", description="MobileSAM: SAM's decoder on a 5M-parameter TinyViT encoder")
def mobile_sam(*, img_size: int = 1024, embed_dims: Sequence[int] = (64, 128, 160, 320), depths: Sequence[int] = (2, 2, 6, 2),
               num_heads: Sequence[int] = (2, 4, 5, 10), window_sizes: Sequence[int] = (7, 7, 14, 7),
               prompt_embed_dim: int = 256, checkpoint: str | None = None) -> Sam:
    """MobileSAM (Zhang et al., 2023): TinyViT-5M distilled from SAM's ViT-H encoder (checkpoint: mobile_sam.pt)."""
    if img_size % 64:
        raise ConfigError(f"MobileSAM's img_size must be a multiple of 64, got {img_size}")
    encoder = TinyViT(img_size=img_size, embed_dims=embed_dims, depths=depths, num_heads=num_heads, window_sizes=window_sizes,
                      out_chans=prompt_embed_dim)
    return build_sam(encoder, img_size=img_size, prompt_embed_dim=prompt_embed_dim, checkpoint=checkpoint, architecture="mobile_sam")


@MODELS.register("sam_timm", task="promptable",
                 description="SAM's prompt encoder and mask decoder on any timm encoder (light, trainable on a CPU)")
def sam_timm(*, encoder: str = "resnet18", encoder_weights: str | None = None, img_size: int = 256, embedding_stride: int = 16,
             encoder_stage: int | None = None, high_res_features: bool = False, prompt_embed_dim: int = 256, mask_in_chans: int = 16, decoder_depth: int = 2, decoder_mlp_dim: int = 2048,
             decoder_num_heads: int = 8, iou_head_hidden_dim: int = 256, checkpoint: str | None = None) -> Sam:
    """Segment Anything with a timm image encoder (``encoder_weights``: "imagenet" or a weights file of it) whose
    stage at ``embedding_stride`` (16, or 8 for small images: masks at half the input's resolution; a deeper
    ``encoder_stage`` is dilated to that stride) feeds SAM's neck, prompt encoder and mask decoder;
    ``high_res_features`` adds the encoder's stages at a half and a quarter of that stride to the decoder's
    upscaling (as SAM 2 does), for sharp boundaries on small objects."""
    image_encoder = TimmImageEncoder(encoder, img_size=img_size, out_chans=prompt_embed_dim, stride=embedding_stride,
                                     stage=encoder_stage, weights=encoder_weights, high_res_features=high_res_features)
    return build_sam(image_encoder, img_size=img_size, prompt_embed_dim=prompt_embed_dim, mask_in_chans=mask_in_chans,
                     decoder_depth=decoder_depth, decoder_mlp_dim=decoder_mlp_dim, decoder_num_heads=decoder_num_heads,
                     iou_head_hidden_dim=iou_head_hidden_dim, checkpoint=checkpoint, architecture="sam_timm",
                     embedding_stride=embedding_stride)
