"""SAM 2's memory step: one frame of one or more objects tracked through a video.

A frame's features are conditioned on memory (the memories of the prompted frames and of the last few tracked
frames, with temporal position embeddings, plus the object pointers of recent frames) by memory attention; SAM's
heads then decode the frame's prompts (or none) into masks, an object score and the object pointer; finally the
memory encoder turns the frame and its mask into the memory that later frames attend to. :func:`track_step` follows
the official ``SAM2Base.track_step`` (same inputs, same output dictionary), so a video predictor can keep its outputs
frame by frame and drop the ones no later frame reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

NO_OBJECT_SCORE = -1024.0  # mask logits of a frame where the object is absent


@dataclass(frozen=True)
class TrackingSettings:
    """The released video settings of SAM 2 (2.1; 2.0 differs in the object pointers' temporal positions)."""

    num_maskmem: int = 7  # the prompted frames' memories + the last six frames'
    max_obj_ptrs: int = 16
    memory_temporal_stride: int = 1
    sigmoid_scale_for_mem_enc: float = 20.0
    sigmoid_bias_for_mem_enc: float = -10.0
    binarize_mask_from_points: bool = True  # a clicked frame's memory holds the mask the user saw
    use_mask_input_as_output: bool = True
    multimask_min_points: int = 0
    multimask_max_points: int = 1
    add_tpos_to_obj_ptrs: bool = True  # 2.0: False
    signed_tpos_for_obj_ptrs: bool = True  # 2.0: False
    max_cond_frames: int = -1

    @classmethod
    def of(cls, version: str) -> TrackingSettings:
        return cls() if version == "2.1" else cls(add_tpos_to_obj_ptrs=False, signed_tpos_for_obj_ptrs=False)


@dataclass
class FrameFeatures:
    """A frame's features as the memory step takes them: each level flattened ``[HW, B, C]`` (stride 4, 8, 16), their
    positions, and the levels' sizes."""

    vision_feats: list[torch.Tensor]
    vision_pos: list[torch.Tensor]
    sizes: list[tuple[int, int]]

    @property
    def high_res(self) -> list[torch.Tensor]:
        return [x.permute(1, 2, 0).reshape(x.shape[1], x.shape[2], *size) for x, size in zip(self.vision_feats[:-1], self.sizes[:-1])]


def frame_features(model, images: torch.Tensor) -> FrameFeatures:
    """Preprocessed frames ``[B, 3, s, s]`` -> :class:`FrameFeatures` (the two fine levels through ``conv_s0``/``conv_s1``)."""
    levels, positions = model.backbone(images)
    return FrameFeatures([x.flatten(2).permute(2, 0, 1) for x in levels], [x.flatten(2).permute(2, 0, 1) for x in positions],
                         [tuple(x.shape[-2:]) for x in levels])


def sine_positions(positions: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """1D sine-cosine embedding ``[N, dim]`` of (fractional) positions ``[N]``."""
    half = dim // 2
    dim_t = torch.arange(half, dtype=torch.float32, device=positions.device)
    dim_t = temperature ** (2 * (dim_t // 2) / half)
    angles = positions.unsqueeze(-1) / dim_t
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def closest_cond_frames(frame_idx: int, cond_outputs: dict, limit: int) -> tuple[dict, dict]:
    """``(selected, unselected)`` prompted frames: all of them without a ``limit``; else the closest before and after
    ``frame_idx`` and the temporally closest others, up to ``limit``."""
    if limit == -1 or len(cond_outputs) <= limit:
        return cond_outputs, {}
    selected = {}
    before = max((t for t in cond_outputs if t < frame_idx), default=None)
    after = min((t for t in cond_outputs if t >= frame_idx), default=None)
    for t in (before, after):
        if t is not None:
            selected[t] = cond_outputs[t]
    others = sorted((t for t in cond_outputs if t not in selected), key=lambda t: abs(t - frame_idx))[: max(0, limit - len(selected))]
    selected.update((t, cond_outputs[t]) for t in others)
    return selected, {t: v for t, v in cond_outputs.items() if t not in selected}


def memory_conditioned_features(model, settings: TrackingSettings, frame_idx: int, is_init_cond_frame: bool,
                                features: FrameFeatures, outputs: dict, num_frames: int, reverse: bool = False) -> torch.Tensor:
    """The frame's coarsest features ``[B, C, H, W]`` after memory attention to the selected memories and pointers
    (a first prompted frame has no memory: ``no_mem_embed`` is added instead)."""
    current, current_pos = features.vision_feats[-1], features.vision_pos[-1]
    batch, channels, (height, width) = current.shape[1], model.hidden_dim, features.sizes[-1]
    if is_init_cond_frame:
        return (current + model.no_mem_embed).permute(1, 2, 0).reshape(batch, channels, height, width)
    device, mem_dim, sign = current.device, model.mem_dim, -1 if reverse else 1
    selected, unselected = closest_cond_frames(frame_idx, outputs["cond_frame_outputs"], settings.max_cond_frames)
    earlier = [(0, out) for out in selected.values()]
    stride = settings.memory_temporal_stride
    for t_pos in range(1, settings.num_maskmem):
        t_rel = settings.num_maskmem - t_pos  # frames before this one
        if t_rel == 1:
            previous = frame_idx - t_rel if not reverse else frame_idx + t_rel
        elif not reverse:
            previous = ((frame_idx - 2) // stride) * stride - (t_rel - 2) * stride
        else:
            previous = -(-(frame_idx + 2) // stride) * stride + (t_rel - 2) * stride
        out = outputs["non_cond_frame_outputs"].get(previous, unselected.get(previous))
        earlier.append((t_pos, out))
    memories, positions = [], []
    for t_pos, out in earlier:
        if out is None:
            continue
        memories.append(out["maskmem_features"].to(device).float().flatten(2).permute(2, 0, 1))
        position = out["maskmem_pos_enc"][-1].to(device).flatten(2).permute(2, 0, 1)
        positions.append(position + model.maskmem_tpos_enc[settings.num_maskmem - t_pos - 1])
    max_ptrs = min(num_frames, settings.max_obj_ptrs)
    pointer_frames = {t: out for t, out in selected.items() if (t >= frame_idx if reverse else t <= frame_idx)}
    pointers = [((frame_idx - t) * sign if settings.signed_tpos_for_obj_ptrs else abs(frame_idx - t), out["obj_ptr"])
                for t, out in pointer_frames.items()]
    for t_diff in range(1, max_ptrs):
        t = frame_idx + t_diff if reverse else frame_idx - t_diff
        if t < 0 or t >= num_frames:
            break
        out = outputs["non_cond_frame_outputs"].get(t, unselected.get(t))
        if out is not None:
            pointers.append((t_diff, out["obj_ptr"]))
    pointer_tokens = 0
    if pointers:
        offsets, values = zip(*pointers)
        obj_ptrs = torch.stack(values, dim=0)
        if settings.add_tpos_to_obj_ptrs:
            tpos = sine_positions(torch.tensor(offsets, device=device) / (max_ptrs - 1), dim=channels)
            obj_pos = model.obj_ptr_tpos_proj(tpos).unsqueeze(1).expand(-1, batch, mem_dim)
        else:
            obj_pos = obj_ptrs.new_zeros(len(offsets), batch, mem_dim)
        if mem_dim < channels:  # a pointer becomes C / mem_dim memory tokens
            obj_ptrs = obj_ptrs.reshape(-1, batch, channels // mem_dim, mem_dim).permute(0, 2, 1, 3).flatten(0, 1)
            obj_pos = obj_pos.repeat_interleave(channels // mem_dim, dim=0)
        memories.append(obj_ptrs)
        positions.append(obj_pos)
        pointer_tokens = obj_ptrs.shape[0]
    conditioned = model.memory_attention(current, torch.cat(memories, dim=0), current_pos, torch.cat(positions, dim=0),
                                         num_obj_ptr_tokens=pointer_tokens)
    return conditioned.permute(1, 2, 0).reshape(batch, channels, height, width)


def sam_heads(model, pix_feat: torch.Tensor, point_inputs: dict | None, mask_inputs: torch.Tensor | None,
              high_res: list[torch.Tensor], multimask: bool) -> tuple:
    """SAM's heads on conditioned features: ``(low-res multimasks, high-res multimasks, IoUs, low-res best mask,
    high-res best mask, object pointer [B, C], object-score logits [B, 1])``."""
    batch, device = pix_feat.shape[0], pix_feat.device
    if point_inputs is not None:
        coords, labels = point_inputs["point_coords"], point_inputs["point_labels"]
    else:
        coords, labels = torch.zeros(batch, 1, 2, device=device), -torch.ones(batch, 1, dtype=torch.int32, device=device)
    prompt_encoder = model.sam_prompt_encoder
    if mask_inputs is not None and tuple(mask_inputs.shape[-2:]) != tuple(prompt_encoder.mask_input_size):
        mask_inputs = F.interpolate(mask_inputs.float(), size=prompt_encoder.mask_input_size, mode="bilinear", align_corners=False,
                                    antialias=True)
    sparse, dense = prompt_encoder(points=(coords, labels), boxes=None, masks=mask_inputs)
    low_multi, ious, tokens, scores = model.sam_mask_decoder(pix_feat, prompt_encoder.get_dense_pe(), sparse, dense,
                                                             multimask_output=multimask, high_res_features=high_res)
    visible = scores > 0
    low_multi = torch.where(visible[:, None, None], low_multi, NO_OBJECT_SCORE).float()
    high_multi = F.interpolate(low_multi, size=(model.image_size, model.image_size), mode="bilinear", align_corners=False)
    token = tokens[:, 0]
    if multimask:
        best, rows = ious.argmax(-1), torch.arange(batch, device=device)
        low, high = low_multi[rows, best][:, None], high_multi[rows, best][:, None]
        if tokens.shape[1] > 1:
            token = tokens[rows, best]
    else:
        low, high = low_multi, high_multi
    pointer = _gated_pointer(model, model.obj_ptr_proj(token), visible.float())
    return low_multi, high_multi, ious, low, high, pointer, scores


def _gated_pointer(model, pointer: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """A hidden object's pointer is the learned ``no_obj_ptr``."""
    return visible * pointer + (1 - visible) * model.no_obj_ptr


def mask_as_output(model, pix_feat: torch.Tensor, high_res: list[torch.Tensor], mask_inputs: torch.Tensor) -> tuple:
    """A mask prompt taken as the frame's output (logits +-10), its pointer from SAM's heads on the downsampled mask."""
    scale, bias = 20.0, -10.0
    high = mask_inputs.float() * scale + bias
    low = F.interpolate(high, size=(high.shape[-2] // 4, high.shape[-1] // 4), mode="bilinear", align_corners=False, antialias=True)
    ious = mask_inputs.new_ones(mask_inputs.shape[0], 1).float()
    pointer = sam_heads(model, pix_feat, None, model.mask_downsample(mask_inputs.float()), high_res, multimask=False)[5]
    visible = (mask_inputs.flatten(1).float() > 0).any(dim=1)[..., None].float()
    return low, high, ious, low, high, _gated_pointer(model, pointer, visible), scale * visible + bias


def encode_memory(model, settings: TrackingSettings, features: FrameFeatures, high_res_masks: torch.Tensor,
                  object_score_logits: torch.Tensor, from_points: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The frame's memory ``(features [B, mem_dim, H, W], [positions])`` from its features and mask logits."""
    batch, (height, width) = features.vision_feats[-1].shape[1], features.sizes[-1]
    pix_feat = features.vision_feats[-1].permute(1, 2, 0).reshape(batch, model.hidden_dim, height, width)
    if settings.binarize_mask_from_points and from_points:
        mask = (high_res_masks > 0).float()
    else:
        mask = torch.sigmoid(high_res_masks)
    mask = mask * settings.sigmoid_scale_for_mem_enc + settings.sigmoid_bias_for_mem_enc
    out = model.memory_encoder(pix_feat, mask, skip_mask_sigmoid=True)
    memory = out["vision_features"]
    if getattr(model, "no_obj_embed_spatial", None) is not None:
        hidden = 1 - (object_score_logits > 0).float()
        memory = memory + hidden[..., None, None] * model.no_obj_embed_spatial[..., None, None]
    return memory, out["vision_pos_enc"]


def track_step(model, settings: TrackingSettings, frame_idx: int, is_init_cond_frame: bool, features: FrameFeatures,
               point_inputs: dict | None, mask_inputs: torch.Tensor | None, outputs: dict, num_frames: int, *,
               reverse: bool = False, run_mem_encoder: bool = True, prev_sam_mask_logits: torch.Tensor | None = None) -> dict:
    """One frame: ``{"point_inputs", "mask_inputs", "pred_masks" (low-res logits), "pred_masks_high_res", "obj_ptr",
    "object_score_logits", "maskmem_features", "maskmem_pos_enc", "multimasks", "ious"}``; ``outputs`` holds the earlier frames' dictionaries
    under ``cond_frame_outputs`` (prompted frames) and ``non_cond_frame_outputs``."""
    current = {"point_inputs": point_inputs, "mask_inputs": mask_inputs}
    high_res = features.high_res
    if mask_inputs is not None and settings.use_mask_input_as_output:
        batch, (height, width) = features.vision_feats[-1].shape[1], features.sizes[-1]
        pix_feat = features.vision_feats[-1].permute(1, 2, 0).reshape(batch, model.hidden_dim, height, width)
        heads = mask_as_output(model, pix_feat, high_res, mask_inputs)
    else:
        pix_feat = memory_conditioned_features(model, settings, frame_idx, is_init_cond_frame, features, outputs, num_frames, reverse)
        if prev_sam_mask_logits is not None:
            mask_inputs = prev_sam_mask_logits
        points = 0 if point_inputs is None else point_inputs["point_labels"].shape[1]
        multimask = settings.multimask_min_points <= points <= settings.multimask_max_points
        heads = sam_heads(model, pix_feat, point_inputs, mask_inputs, high_res, multimask)
    multimasks, _, ious, low, high, pointer, scores = heads
    current.update(pred_masks=low, pred_masks_high_res=high, obj_ptr=pointer, object_score_logits=scores,
                   multimasks=multimasks, ious=ious)  # every proposal and its predicted IoU (what training learns from)
    if run_mem_encoder:
        current["maskmem_features"], current["maskmem_pos_enc"] = encode_memory(model, settings, features, high, scores,
                                                                               point_inputs is not None)
    else:
        current["maskmem_features"] = current["maskmem_pos_enc"] = None
    return current
