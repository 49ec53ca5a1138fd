"""Segment Anything 2 (Ravi et al. 2024): SAM's prompt encoder and a mask decoder that reads the Hiera encoder's
high-resolution features, scores whether the object is visible at all and gives an object pointer; plus the streaming
memory (``memory.py``) that carries each object from frame to frame. The SAM 2.0 and 2.1 releases of the four Hiera
sizes are registered (``sam2.1_hiera_tiny`` ... ``sam2_hiera_large``); their official checkpoint files
(``{"model": state_dict}``) load unchanged, their published sha256 checked, read with ``weights_only=True`` and
checked key by key.

The image path is the official image predictor's: the image squashed to ``image_size`` squared, ImageNet-normalised,
``no_mem_embed`` added to the coarsest features (an image is a video's first frame, with no memory yet).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from omniseg.errors import ConfigError
from omniseg.models.builder import MODELS
from omniseg.models.encoders.weights import read_state_dict
from omniseg.models.hub import check_state_dict
from omniseg.models.promptable.blocks import MLP
from omniseg.models.promptable.hiera import HIERA_SIZES, hiera_image_encoder
from omniseg.models.promptable.mask_decoder import MaskDecoder, TwoWayTransformer
from omniseg.models.promptable.memory import MemoryAttention, MemoryEncoder
from omniseg.models.promptable.official_files import verify_official_file
from omniseg.models.promptable.prompt_encoder import PromptEncoder

#: the official checkpoint file of each registered architecture (the name gives the architecture)
OFFICIAL_FILES = {f"sam2{version}_hiera_{size}": f"sam2{version}_hiera_{short}.pt"
                  for version in ("", ".1") for size, short in (("tiny", "tiny"), ("small", "small"),
                                                                ("base_plus", "base_plus"), ("large", "large"))}
SAM2_ARCHITECTURE = {file: name for name, file in OFFICIAL_FILES.items()}


class Sam2MaskDecoder(MaskDecoder):
    """SAM's mask decoder with SAM 2's additions: ``conv_s0``/``conv_s1`` project the encoder's stride-4 and stride-8
    features for the upscaling path, an object-score token and head (is the object in this frame at all), IoU
    predictions through a sigmoid, and, for a single mask, the best of the three multimask outputs when the
    single-mask output is unstable."""

    def __init__(self, *, transformer_dim: int, transformer: nn.Module, iou_head_hidden_dim: int = 256,
                 use_high_res_features: bool = True, iou_prediction_use_sigmoid: bool = True, pred_obj_scores: bool = True,
                 pred_obj_scores_mlp: bool = True, use_multimask_token_for_obj_ptr: bool = True,
                 dynamic_multimask_via_stability: bool = True, dynamic_multimask_stability_delta: float = 0.05,
                 dynamic_multimask_stability_thresh: float = 0.98) -> None:
        super().__init__(transformer_dim=transformer_dim, transformer=transformer, iou_head_hidden_dim=iou_head_hidden_dim)
        self.pred_obj_scores, self.iou_sigmoid = pred_obj_scores, iou_prediction_use_sigmoid
        self.use_multimask_token_for_obj_ptr = use_multimask_token_for_obj_ptr
        self.dynamic_multimask_via_stability = dynamic_multimask_via_stability
        self.stability_delta, self.stability_thresh = dynamic_multimask_stability_delta, dynamic_multimask_stability_thresh
        if pred_obj_scores:
            self.obj_score_token = nn.Embedding(1, transformer_dim)
            self.pred_obj_score_head = MLP(transformer_dim, transformer_dim, 1, 3) if pred_obj_scores_mlp else nn.Linear(transformer_dim, 1)
        if use_high_res_features:
            self.conv_s0 = nn.Conv2d(transformer_dim, transformer_dim // 8, kernel_size=1)
            self.conv_s1 = nn.Conv2d(transformer_dim, transformer_dim // 4, kernel_size=1)

    def output_tokens(self) -> torch.Tensor:
        tokens = super().output_tokens()
        return torch.cat([self.obj_score_token.weight, tokens], dim=0) if self.pred_obj_scores else tokens

    def forward(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor, sparse_prompt_embeddings: torch.Tensor,
                dense_prompt_embeddings: torch.Tensor, multimask_output: bool, repeat_image: bool = False,
                high_res_features: Sequence[torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(mask logits [B, 1 or 3, 4h, 4w], IoU predictions, the object-pointer tokens, object-score logits [B, 1])``;
        ``high_res_features`` are the projected stride-4 and stride-8 features (``conv_s0``, ``conv_s1``)."""
        embeddings = image_embeddings if high_res_features is None else (image_embeddings, high_res_features[1], high_res_features[0])
        masks, iou, mask_tokens, tokens = self.decode(embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings)
        if self.iou_sigmoid:
            iou = iou.sigmoid()
        scores = self.pred_obj_score_head(tokens[:, 0]) if self.pred_obj_scores else iou.new_full((iou.shape[0], 1), 10.0)
        if multimask_output:
            masks, iou = masks[:, 1:], iou[:, 1:]
        elif self.dynamic_multimask_via_stability and not self.training:
            masks, iou = self._stable_single_mask(masks, iou)
        else:
            masks, iou = masks[:, :1], iou[:, :1]
        pointer_tokens = mask_tokens[:, 1:] if multimask_output and self.use_multimask_token_for_obj_ptr else mask_tokens[:, :1]
        return masks, iou, pointer_tokens, scores

    def _stable_single_mask(self, masks: torch.Tensor, iou: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The single-mask output where it is stable (its area barely moves between logit thresholds +-delta),
        else the multimask output with the best predicted IoU."""
        rows = torch.arange(masks.shape[0], device=masks.device)
        best = iou[:, 1:].argmax(-1)
        best_masks, best_iou = masks[:, 1:][rows, best][:, None], iou[:, 1:][rows, best][:, None]
        logits = masks[:, :1].flatten(-2)
        inner, outer = (logits > self.stability_delta).sum(-1).float(), (logits > -self.stability_delta).sum(-1).float()
        stable = torch.where(outer > 0, inner / outer, 1.0) >= self.stability_thresh
        return (torch.where(stable[..., None, None], masks[:, :1], best_masks), torch.where(stable, iou[:, :1], best_iou))


class Sam2(nn.Module):
    """SAM 2's parts, named as the official ``SAM2Base``: ``image_encoder``, ``sam_prompt_encoder``, ``sam_mask_decoder``,
    ``memory_encoder``, ``memory_attention`` and the learned memory embeddings. ``version`` "2.1" adds the spatial
    no-object embedding and the projection of the object pointers' temporal positions."""

    mask_threshold: float = 0.0
    promptable = True

    def __init__(self, image_encoder: nn.Module, *, image_size: int = 1024, num_maskmem: int = 7, mem_dim: int = 64,
                 memory_layers: int = 4, memory_feedforward: int = 2048, version: str = "2.1") -> None:
        super().__init__()
        if version not in ("2.0", "2.1"):
            raise ConfigError(f"SAM 2 version {version!r}: 2.0 or 2.1")
        hidden = image_encoder.neck.convs[0].conv.out_channels
        grid = image_size // 16
        self.image_size, self.version, self.hidden_dim, self.mem_dim = image_size, version, hidden, mem_dim
        self.image_encoder = image_encoder
        self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)
        self.memory_attention = MemoryAttention(hidden, memory_layers, dim_feedforward=memory_feedforward, kv_in_dim=mem_dim)
        self.memory_encoder = MemoryEncoder(mem_dim, hidden)
        self.maskmem_tpos_enc = nn.Parameter(torch.zeros(num_maskmem, 1, 1, mem_dim))
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, hidden))
        self.no_mem_pos_enc = nn.Parameter(torch.zeros(1, 1, hidden))
        self.no_obj_ptr = nn.Parameter(torch.zeros(1, hidden))
        if version == "2.1":
            self.no_obj_embed_spatial = nn.Parameter(torch.zeros(1, mem_dim))
        for parameter in (self.maskmem_tpos_enc, self.no_mem_embed, self.no_mem_pos_enc, self.no_obj_ptr):
            nn.init.trunc_normal_(parameter, std=0.02)
        self.sam_prompt_encoder = PromptEncoder(embed_dim=hidden, image_embedding_size=(grid, grid),
                                                input_image_size=(image_size, image_size), mask_in_chans=16)
        self.sam_mask_decoder = Sam2MaskDecoder(
            transformer_dim=hidden, transformer=TwoWayTransformer(depth=2, embedding_dim=hidden, mlp_dim=2048, num_heads=8,
                                                                  mlp_layers=True))
        self.obj_ptr_proj = MLP(hidden, hidden, hidden, 3)
        self.obj_ptr_tpos_proj = nn.Linear(hidden, mem_dim) if version == "2.1" else nn.Identity()
        self.register_buffer("pixel_mean", torch.tensor((0.485, 0.456, 0.406)).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor((0.229, 0.224, 0.225)).view(-1, 1, 1), False)

    @property
    def img_size(self) -> int:
        return self.image_size

    @property
    def prompt_encoder(self) -> PromptEncoder:
        return self.sam_prompt_encoder

    @property
    def mask_decoder(self) -> Sam2MaskDecoder:
        return self.sam_mask_decoder

    @property
    def mask_input_size(self) -> tuple[int, int]:
        return tuple(self.sam_prompt_encoder.mask_input_size)

    def encode_image(self, image: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], tuple[int, int]]:
        """``(features, input size)`` of a uint8 ``[3, H, W]`` image (the prompt predictor's contract)."""
        return self.image_features(self.preprocess(image[None])), (self.image_size, self.image_size)

    def decode_prompts(self, features, points: torch.Tensor | None, labels: torch.Tensor | None, boxes: torch.Tensor | None,
                       mask_input: torch.Tensor | None, multimask: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Low-resolution logits and IoU predictions for prompts in the input frame (the prompt predictor's contract)."""
        masks, iou, _ = self.predict(features, points=points, labels=labels, boxes=boxes, mask_input=mask_input, multimask=multimask)
        return masks, iou

    def embed_images(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Preprocessed images -> :meth:`decode_all`'s features (the training contract: an image is a first frame)."""
        return self.image_features(x)

    def decode_all(self, features, sparse: torch.Tensor, dense: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(logits [B, 4, h, w], IoU predictions [B, 4] (through the sigmoid), object-score logits [B, 1])``: the
        single-mask output, then the three proposals."""
        embedding, at_4x, at_2x = features
        decoder = self.sam_mask_decoder
        masks, iou, _, tokens = decoder.decode((embedding, at_2x, at_4x), self.sam_prompt_encoder.get_dense_pe(), sparse, dense)
        return masks, iou.sigmoid() if decoder.iou_sigmoid else iou, decoder.pred_obj_score_head(tokens[:, 0])

    def postprocess_masks(self, masks: torch.Tensor, input_size: tuple[int, int], original_size: tuple[int, int]) -> torch.Tensor:
        """Low-resolution logits -> logits at the original image size (the input was squashed, not padded)."""
        return F.interpolate(masks, tuple(original_size), mode="bilinear", align_corners=False)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """0..255 RGB ``[N, 3, H, W]`` squashed to ``image_size`` squared and normalised, as SAM 2 was trained."""
        x = F.interpolate(images.float() / 255, (self.image_size, self.image_size), mode="bilinear", align_corners=False,
                          antialias=True)
        return (x - self.pixel_mean) / self.pixel_std

    def backbone(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Preprocessed images -> the three feature levels (stride 4 and 8 projected for the decoder by ``conv_s0``
        and ``conv_s1``, stride 16 as encoded) and their positions."""
        out = self.image_encoder(x)
        fpn = list(out["backbone_fpn"])
        fpn[0], fpn[1] = self.sam_mask_decoder.conv_s0(fpn[0]), self.sam_mask_decoder.conv_s1(fpn[1])
        return fpn, out["vision_pos_enc"]

    def image_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Preprocessed images -> ``(embedding [N, d, s/16, s/16] with no_mem_embed added, stride-4 and stride-8
        high-resolution features)``: a still image is a video's first frame, with no memory yet."""
        fpn, _ = self.backbone(x)
        return fpn[-1] + self.no_mem_embed.view(1, -1, 1, 1), fpn[0], fpn[1]

    def predict(self, features: tuple[torch.Tensor, ...], *, points: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, boxes: torch.Tensor | None = None, mask_input: torch.Tensor | None = None,
                multimask: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Low-resolution mask logits, IoU predictions and object-score logits for prompts in input-frame pixels
        (``points`` ``[B, N, 2]`` with ``labels``; ``boxes`` ``[B, 4]`` become two corner points, labels 2 and 3)."""
        embedding, *high_res = features
        if boxes is not None:
            corners = boxes.reshape(-1, 2, 2)
            corner_labels = torch.tensor([[2, 3]], dtype=torch.int64, device=corners.device).expand(len(corners), -1)
            points = corners if points is None else torch.cat([corners, points], dim=1)
            labels = corner_labels if labels is None else torch.cat([corner_labels, labels], dim=1)
        sparse, dense = self.sam_prompt_encoder(points=(points, labels) if points is not None else None, boxes=None,
                                                masks=mask_input)
        masks, iou, _, scores = self.sam_mask_decoder(embedding, self.sam_prompt_encoder.get_dense_pe(), sparse, dense,
                                                      multimask_output=multimask, repeat_image=False, high_res_features=high_res)
        return masks, iou, scores


def load_sam2_checkpoint(model: Sam2, checkpoint: str | Path, *, architecture: str) -> Sam2:
    """Load an official SAM 2 file (``{"model": state_dict}``) or an omniseg-saved state dict: every key and shape must
    match (the first mismatches are named: a SAM 1 file given to a SAM 2 architecture says so)."""
    path = Path(checkpoint)
    verify_official_file(path)
    state = read_state_dict(path, f"{architecture} checkpoint")
    if any(key.startswith(("image_encoder.blocks.", "mask_decoder.", "prompt_encoder.")) for key in state):
        raise ConfigError(f"{path} is a Segment Anything 1 checkpoint (keys such as mask_decoder.*, image_encoder.blocks.*); "
                          f"{architecture} is SAM 2: give a sam2*_hiera_*.pt file, or use a SAM 1 architecture (sam_vit_b, ...)")
    check_state_dict(model, state, f"{architecture} checkpoint {path}")
    model.load_state_dict(state)
    return model


def sam2_model(size: str | None = None, *, version: str = "2.1", image_size: int = 1024, d_model: int = 256,
               mem_dim: int = 64, memory_layers: int = 4, memory_feedforward: int = 2048, checkpoint: str | Path | None = None,
               architecture: str = "sam2", **trunk_options) -> Sam2:
    """A SAM 2 of a released trunk ``size`` (or any trunk configuration: ``trunk_options`` override the size's) and
    release ``version``; ``d_model``, ``mem_dim``, the memory attention's depth and width make small ones."""
    model = Sam2(hiera_image_encoder(size, d_model=d_model, **trunk_options), image_size=image_size, mem_dim=mem_dim,
                 memory_layers=memory_layers, memory_feedforward=memory_feedforward, version=version)
    if checkpoint is not None:
        load_sam2_checkpoint(model, checkpoint, architecture=architecture)
    return model.eval()


@MODELS.register("sam2", task="promptable", description="Segment Anything 2 of any size (a released trunk, or small ones)")
def sam2(*, size: str | None = "tiny", version: str = "2.1", image_size: int = 1024, d_model: int = 256, mem_dim: int = 64,
         memory_layers: int = 4, memory_feedforward: int = 2048, embed_dim: int | None = None, num_heads: int | None = None,
         stages: Sequence[int] | None = None, global_att_blocks: Sequence[int] | None = None,
         window_pos_embed_bkg_spatial_size: Sequence[int] | None = None, window_spec: Sequence[int] | None = None,
         checkpoint: str | None = None) -> Sam2:
    """SAM 2 with a released trunk ``size`` whose options may be overridden (all of them with ``size=None``)."""
    trunk = {key: tuple(value) if isinstance(value, list) else value for key, value in
             dict(embed_dim=embed_dim, num_heads=num_heads, stages=stages, global_att_blocks=global_att_blocks,
                  window_pos_embed_bkg_spatial_size=window_pos_embed_bkg_spatial_size, window_spec=window_spec).items()
             if value is not None}
    return sam2_model(size, version=version, image_size=image_size, d_model=d_model, mem_dim=mem_dim, memory_layers=memory_layers,
                      memory_feedforward=memory_feedforward, checkpoint=checkpoint, **trunk)


def _released(size: str, version: str):
    name = f"sam2{'.1' if version == '2.1' else ''}_hiera_{size}"

    def builder(*, checkpoint: str | None = None) -> Sam2:
        return sam2_model(size, version=version, checkpoint=checkpoint, architecture=name)

    builder.__doc__ = f"SAM {version} with the Hiera-{size} trunk as released (1024 px; checkpoint: {OFFICIAL_FILES[name]})."
    return name, builder


for _version in ("2.1", "2.0"):
    for _size in HIERA_SIZES:
        _name, _builder = _released(_size, _version)
        MODELS.add(_name, _builder, task="promptable", description=f"Segment Anything {_version}, Hiera-{_size} (official layout)")
