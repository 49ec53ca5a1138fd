"""Predictor: a saved model applied to images of any size, without a trainer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from omniseg.data.imageio import read_image
from omniseg.data.transforms import VolumeTransform, match_channels
from omniseg.errors import OmnisegError
from omniseg.inference.instances import semantic_to_instances
from omniseg.inference.optimize import fold_batchnorm
from omniseg.models.hub import ModelCard, load_model
from omniseg.models.panoptic.merge import merge_prediction
from omniseg.models.semantic.base import is_volumetric

ImageLike = str | Path | np.ndarray | Image.Image | torch.Tensor


def to_image_tensor(image: ImageLike) -> torch.Tensor:
    """A path, PIL image, uint8 ``[H, W, 3]`` / ``[H, W]`` array or uint8 ``[3, H, W]`` tensor as uint8 ``[3, H, W]``."""
    if isinstance(image, (str, Path)):
        return read_image(image)
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    if isinstance(image, np.ndarray):
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] not in (3, 4):
            raise OmnisegError(f"expected an [H, W, 3] image array, got shape {image.shape}")
        image = torch.from_numpy(np.ascontiguousarray(image[..., :3])).permute(2, 0, 1)
    if not isinstance(image, torch.Tensor) or image.ndim != 3:
        raise OmnisegError(f"expected an image path, PIL image, [H, W, 3] array or [3, H, W] tensor, got {type(image)}")
    return image


class Predictor:
    """Predict with a trained model: class masks (semantic models), instances (instance and panoptic
    models) or panoptic segments (panoptic models).

    Args:
        model: a run directory (``model.json`` + ``model.safetensors``) or a loaded model with ``.card``.
        device: ``"cpu"``, ``"cuda"``, ... (default: CUDA when available).
        optimize: fold BatchNorm into convolutions and use channels-last memory (same outputs, faster).

    Example:
        >>> mask = Predictor("runs/demo").predict("scene.png")  # doctest: +SKIP
        >>> mask.shape  # (H, W) class ids  # doctest: +SKIP
    """

    def __init__(self, model: str | Path | nn.Module, *, device: str | None = None, optimize: bool = True) -> None:
        where = "the model's card" if isinstance(model, nn.Module) else model
        if not isinstance(model, nn.Module):
            model = load_model(model)
        card: ModelCard | None = getattr(model, "card", None)
        if card is None:
            raise OmnisegError("the model has no .card; load it with omniseg.load_model(run_dir)")
        self.card, self.info = card, card.info
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.task = card.task
        self.volumetric = self.task == "semantic" and is_volumetric(model)
        if self.task == "semantic" and not self.volumetric:  # detectors normalise their input themselves
            mean, std = card.normalisation(where)
            self._mean = torch.tensor(mean, device=self.device).view(1, -1, 1, 1)
            self._std = torch.tensor(std, device=self.device).view(1, -1, 1, 1)
            self._channels = card.kwargs.get("in_channels", 3)
        model = model.eval().to(self.device)
        self._memory_format = torch.contiguous_format
        if optimize and self.task == "semantic" and not self.volumetric:
            example = torch.randn(1, card.kwargs.get("in_channels", 3), 64, 64, device=self.device)
            model = fold_batchnorm(model, example)
            if self.device.type == "cpu":
                self._memory_format = torch.channels_last
                model = model.to(memory_format=torch.channels_last)
        self.model = model

    def _check_images(self) -> None:
        if self.task != "semantic":
            raise OmnisegError(f"{self.card.architecture} is an {self.task} model; use predict_instances(image)"
                               + (" or predict_panoptic(image)" if self.task == "panoptic" else ""))
        if self.volumetric:
            raise OmnisegError(f"{self.card.architecture} is a volumetric model; use predict_volume(volume [C, D, H, W])")

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``[N, 3, H, W]`` (or float in 0..1, as 16-bit files are read) -> the model's channels,
        normalised, on the device."""
        self._check_images()
        x = match_channels(images.to(self.device), self._channels).to(torch.float32)
        x = x / 255 if images.dtype == torch.uint8 else x
        return ((x - self._mean) / self._std).contiguous(memory_format=self._memory_format)

    @torch.inference_mode()
    def predict_proba(self, image: ImageLike) -> torch.Tensor:
        """Class probabilities ``[K, H, W]`` (float32, on the CPU)."""
        x = self.preprocess(to_image_tensor(image).unsqueeze(0))
        return self.model(x).softmax(1)[0].float().cpu()

    @torch.inference_mode()
    def predict_batch(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``[N, 3, H, W]`` -> class ids ``[N, H, W]`` (int64, on the CPU)."""
        return self.model(self.preprocess(images)).argmax(1).cpu()

    def predict(self, image: ImageLike) -> np.ndarray:
        """Class ids ``[H, W]`` (int64) for one image of any size."""
        return self.predict_batch(to_image_tensor(image).unsqueeze(0))[0].numpy()

    @torch.inference_mode()
    def _detect(self, image: ImageLike) -> dict:
        x = to_image_tensor(image).to(self.device, torch.float32) / 255
        return {k: v.cpu() for k, v in self.model([x])[0].items()}

    def predict_instances(self, image: ImageLike, *, score_threshold: float = 0.5, mask_threshold: float = 0.5,
                          split_touching: bool = False) -> dict:
        """Instances of one image of any size, best first: ``masks`` bool [N, H, W], ``labels`` int64 [N],
        ``scores`` float32 [N], ``boxes`` float32 [N, 4] (XYXY pixels); those scoring under
        ``score_threshold`` are left out, mask probabilities are cut at ``mask_threshold``.

        A semantic model answers too: the connected regions of its thing classes (all classes but 0 when the
        dataset names no things) are the instances, touching ones split by a watershed with
        ``split_touching``, each scored by its mean class probability."""
        if self.task == "semantic":
            output = self._instances_from_classes(image, split_touching)
            masks = output["masks"]
        else:
            output = {k: v.numpy() for k, v in self._detect(image).items()}
            masks = output["masks"][:, 0] >= mask_threshold
        keep = output["scores"] >= score_threshold
        order = np.argsort(-output["scores"][keep], kind="stable")
        return {"masks": masks[keep][order], "labels": output["labels"][keep][order], "scores": output["scores"][keep][order],
                "boxes": output["boxes"][keep][order]}

    def _instances_from_classes(self, image: ImageLike, split_touching: bool) -> dict:
        probabilities = self.predict_proba(image).numpy()
        classes = self.info.things or list(range(1, self.info.num_classes))
        masks, labels = semantic_to_instances(probabilities.argmax(0), classes, split=split_touching)
        scores = np.array([probabilities[label][mask].mean() for mask, label in zip(masks, labels)], np.float32)
        boxes = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] for ys, xs in (np.nonzero(m) for m in masks)],
                         np.float32).reshape(-1, 4)
        return {"masks": masks, "labels": labels.astype(np.int64), "scores": scores, "boxes": boxes}

    def predict_panoptic(self, image: ImageLike, *, mask_threshold: float = 0.5, **merge_options) -> tuple[np.ndarray, list[dict]]:
        """``(segment ids [H, W] int32, segments_info)`` of one image from a panoptic model: its instances and
        stuff merged by :func:`~omniseg.models.panoptic.panoptic_merge` with the model's own settings, which
        ``merge_options`` (``score_threshold``, ``overlap_threshold``, ``stuff_min_area``) override."""
        if self.task != "panoptic":
            raise OmnisegError(f"{self.card.architecture} is a {self.task} model; panoptic output needs a panoptic model (panoptic_fpn)")
        options = {**getattr(self.model, "merge_options", {}), **merge_options}
        return merge_prediction(self._detect(image), self.info.things, mask_threshold=mask_threshold, **options)

    @torch.inference_mode()
    def predict_volume(self, volume: np.ndarray | torch.Tensor) -> np.ndarray:
        """Class ids ``[D, H, W]`` (int64) for one volume ``[C, D, H, W]`` (or ``[D, H, W]``) of any size,
        normalised as in training (z-score per channel)."""
        if not self.volumetric:
            raise OmnisegError(f"{self.card.architecture} is a 2D model; use predict(image)")
        x = torch.as_tensor(np.asarray(volume, dtype=np.float32))
        x = x[None] if x.ndim == 3 else x
        if x.ndim != 4:
            raise OmnisegError(f"expected a volume [C, D, H, W] or [D, H, W], got shape {tuple(x.shape)}")
        sample = VolumeTransform()({"image": x})
        return self.model(sample["image"].unsqueeze(0).to(self.device)).argmax(1)[0].cpu().numpy()
