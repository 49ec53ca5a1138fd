"""Segment Anything to ONNX: the prompt encoder + mask decoder with SAM's own ONNX input contract (what the
official web demo and many deployments call), and the image encoder as a separate graph; onnxruntime parity.
SAM 2's image path exports the same way, its encoder graph giving the two high-resolution feature maps beside the
embedding and its decoder graph taking them (the names SAM 2's ONNX deployments use: ``image_embed``,
``high_res_feats_0``, ``high_res_feats_1``) and giving the object score too."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from omniseg.errors import ConfigError
from omniseg.inference.deploy.export import _quiet
from omniseg.models.promptable import Sam
from omniseg.models.promptable.sam2 import Sam2


def _dense_prompt(prompt_encoder, mask_input: torch.Tensor, has_mask_input: torch.Tensor) -> torch.Tensor:
    """The mask prompt's dense embedding where ``has_mask_input`` is 1, the learned no-mask embedding where it is 0."""
    return (has_mask_input * prompt_encoder.embed_masks(mask_input)
            + (1 - has_mask_input) * prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1))


class SamPromptDecoder(nn.Module):
    """SAM's ONNX contract. Inputs: ``image_embeddings`` [1, D, h, w]; ``point_coords`` [1, N, 2] in the resized
    input's frame; ``point_labels`` [1, N] (1 object, 0 background, 2 and 3 a box's corners, -1 padding);
    ``mask_input`` [1, 1, 4h, 4w]; ``has_mask_input`` [1]; ``orig_im_size`` [2] (H, W). Outputs: ``masks``
    [1, C, H, W] logits at the image size, ``iou_predictions`` [1, C], ``low_res_masks`` [1, C, 4h, 4w]
    (C = 4: the single-mask output then the three proposals; or 1 with ``single_mask``: the single-mask output
    when there is more than one point, else the best proposal, as SAM's exporter chooses)."""

    def __init__(self, model: Sam, *, single_mask: bool = False) -> None:
        super().__init__()
        self.model, self.single_mask = model, single_mask
        self.img_size = model.img_size

    def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input, orig_im_size):
        prompt = self.model.prompt_encoder
        sparse = prompt.embed_points(point_coords, point_labels)
        dense = _dense_prompt(prompt, mask_input, has_mask_input)
        low_res, scores = self.model.mask_decoder.predict_masks(image_embeddings, prompt.get_dense_pe(), sparse, dense)
        if self.single_mask:
            bonus = torch.zeros_like(scores)
            bonus[:, 0] = 1000.0
            best = torch.argmax(scores + (point_coords.shape[1] - 2.5) * bonus, dim=1)
            low_res = low_res[torch.arange(low_res.shape[0]), best][:, None]
            scores = scores[torch.arange(scores.shape[0]), best][:, None]
        size = orig_im_size.to(torch.float32)
        resized = torch.floor(size * (self.img_size / torch.max(size)) + 0.5).to(torch.int64)
        masks = F.interpolate(low_res, size=(self.img_size, self.img_size), mode="bilinear", align_corners=False)
        masks = masks[..., : resized[0], : resized[1]]
        h, w = orig_im_size.to(torch.int64)[0], orig_im_size.to(torch.int64)[1]
        masks = F.interpolate(masks, size=(h, w), mode="bilinear", align_corners=False)
        return masks, scores, low_res


class Sam2PromptDecoder(nn.Module):
    """SAM 2's decoder graph. Inputs: ``image_embed`` [1, D, h, w] (``no_mem_embed`` added, as the encoder graph gives
    it), ``high_res_feats_0`` [1, D/8, 4h, 4w], ``high_res_feats_1`` [1, D/4, 2h, 2w], then SAM's prompt inputs
    (:class:`SamPromptDecoder`; the image was squashed to the model's square input, so points are scaled by
    ``image_size / W`` and ``image_size / H``). Outputs: ``masks`` [1, C, H, W] logits at the image size,
    ``iou_predictions`` [1, C], ``low_res_masks`` [1, C, 4h, 4w], ``object_score_logits`` [1, 1] (the object is
    present where > 0). C = 4 (the single-mask output, then the three proposals), or 1 with ``single_mask``: the
    single-mask output where it is stable, else the best proposal (SAM 2's own rule)."""

    def __init__(self, model: Sam2, *, single_mask: bool = False) -> None:
        super().__init__()
        self.model, self.single_mask = model, single_mask

    def forward(self, image_embed, high_res_feats_0, high_res_feats_1, point_coords, point_labels, mask_input, has_mask_input,
                orig_im_size):
        prompt = self.model.sam_prompt_encoder
        sparse = prompt.embed_points(point_coords, point_labels)
        dense = _dense_prompt(prompt, mask_input, has_mask_input)
        low_res, iou, scores = self.model.decode_all((image_embed, high_res_feats_0, high_res_feats_1), sparse, dense)
        if self.single_mask:
            low_res, iou = self.model.sam_mask_decoder._stable_single_mask(low_res, iou)
        size = orig_im_size.to(torch.int64)
        masks = F.interpolate(low_res, size=(size[0], size[1]), mode="bilinear", align_corners=False)
        return masks, iou, low_res, scores


class SamImageEncoder(nn.Module):
    """``image`` [1, 3, S, S] (normalised, :meth:`Sam.preprocess`) -> ``image_embeddings``; for SAM 2 ``(image_embed,
    high_res_feats_0, high_res_feats_1)``."""

    def __init__(self, model: Sam | Sam2) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor):
        if isinstance(self.model, Sam2):
            return self.model.image_features(image)
        return self.model.image_encoder(image)


def decoder_example(model: Sam | Sam2, points: int = 3) -> dict[str, torch.Tensor]:
    """Example inputs of the model's decoder graph (random features, points and box corners, a mask)."""
    generator = torch.Generator().manual_seed(0)
    prompt = model.prompt_encoder
    grid, dim = prompt.image_embedding_size, prompt.embed_dim
    features = {"image_embeddings": torch.randn(1, dim, *grid, generator=generator)}
    if isinstance(model, Sam2):
        features = {"image_embed": features["image_embeddings"],
                    "high_res_feats_0": torch.randn(1, dim // 8, 4 * grid[0], 4 * grid[1], generator=generator),
                    "high_res_feats_1": torch.randn(1, dim // 4, 2 * grid[0], 2 * grid[1], generator=generator)}
    return {**features,
            "point_coords": torch.rand(1, points, 2, generator=generator) * model.img_size,
            "point_labels": torch.tensor([[1, 0, 2, 3, -1][:points]], dtype=torch.float32),
            "mask_input": torch.randn(1, 1, 4 * grid[0], 4 * grid[1], generator=generator),
            "has_mask_input": torch.tensor([1.0]),
            "orig_im_size": torch.tensor([0.75 * model.img_size, model.img_size], dtype=torch.float32)}


def export_sam_onnx(model: Sam | Sam2, out_dir: str | Path, *, single_mask: bool = False, opset: int = 17) -> dict:
    """Write ``decoder.onnx`` (:class:`SamPromptDecoder`, or :class:`Sam2PromptDecoder`; any number of points, any
    image size) and ``encoder.onnx`` (:class:`SamImageEncoder`) into ``out_dir``, and check both with onnxruntime.

    Returns ``{"decoder", "encoder", "decoder_max_abs_difference", "encoder_max_abs_difference"}``."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise ConfigError("ONNX export needs the onnx extra: pip install 'omniseg[onnx]'") from None
    if not isinstance(model, (Sam, Sam2)):
        raise ConfigError(f"export_sam_onnx takes a Segment Anything model (SAM, MobileSAM or SAM 2), got {type(model).__name__}")
    if isinstance(model, Sam) and getattr(model.image_encoder, "high_res", None) is not None:
        raise ConfigError("this model's decoder takes high-resolution features besides the embedding, which SAM's ONNX "
                          "contract has no input for; export a model without high_res_features")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    sam2 = isinstance(model, Sam2)
    # wrappers in eval mode: the exporter restores each wrapper's mode, and with it the model's, when it is done
    decoder = (Sam2PromptDecoder if sam2 else SamPromptDecoder)(model, single_mask=single_mask).eval()
    encoder = SamImageEncoder(model).eval()
    example = decoder_example(model)
    image = torch.randn(1, 3, model.img_size, model.img_size, generator=torch.Generator().manual_seed(1))
    outputs = ["masks", "iou_predictions", "low_res_masks"] + (["object_score_logits"] if sam2 else [])
    features = ["image_embed", "high_res_feats_0", "high_res_feats_1"] if sam2 else ["image_embeddings"]
    with warnings.catch_warnings(), _quiet("torch.onnx"), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(decoder, tuple(example.values()), str(out / "decoder.onnx"), input_names=list(example),
                          output_names=outputs, opset_version=opset, dynamo=False,
                          dynamic_axes={"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"},
                                        "masks": {2: "height", 3: "width"}})
        torch.onnx.export(encoder, (image,), str(out / "encoder.onnx"), input_names=["image"], output_names=features,
                          opset_version=opset, dynamo=False)
    return {"decoder": str(out / "decoder.onnx"), "encoder": str(out / "encoder.onnx"),
            "decoder_max_abs_difference": onnx_difference(out / "decoder.onnx", decoder, example),
            "encoder_max_abs_difference": onnx_difference(out / "encoder.onnx", encoder, {"image": image})}


def onnx_difference(path: str | Path, module: nn.Module, inputs: dict[str, torch.Tensor]) -> float:
    """Largest absolute difference between onnxruntime's outputs for ``path`` and ``module``'s on ``inputs``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    got = session.run(None, {k: v.numpy() for k, v in inputs.items() if k in names})
    with torch.no_grad():
        expected = module(*inputs.values())
    expected = expected if isinstance(expected, tuple) else (expected,)
    return max(float(np.abs(g - e.numpy()).max()) for g, e in zip(got, expected))


def export_promptable(source: str | Path | Sam | Sam2, out_dir: str | Path, *, arch: str | None = None, single_mask: bool = False) -> dict:
    """:func:`export_sam_onnx` of a promptable run directory, or of a checkpoint file with its ``arch``."""
    from omniseg.inference.promptable.prompt_predictor import PromptPredictor, load_prompt_model

    predictor = load_prompt_model(source, arch=arch, device="cpu")
    if not isinstance(predictor, PromptPredictor):
        raise ConfigError("only Segment Anything models export; the weight-free engines have nothing to export")
    return export_sam_onnx(predictor.model, out_dir, single_mask=single_mask)


def is_promptable_run(path: str | Path) -> bool:
    """Whether ``path`` is a run directory of a promptable model."""
    from omniseg.models.hub import CARD_FILE, load_card

    return (Path(path) / CARD_FILE).is_file() and load_card(path).task == "promptable"
