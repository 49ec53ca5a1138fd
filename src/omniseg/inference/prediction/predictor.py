"""Predictor: a saved model applied to images of any size, without a trainer."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from omniseg.core.device import resolve_device
from omniseg.core.labels import class_ids
from omniseg.core.precision import autocast, choose_inference_precision
from omniseg.data.imageio import ImageLike, to_image_tensor
from omniseg.data.transforms import VolumeTransform, match_channels
from omniseg.errors import OmnisegError
from omniseg.inference.prediction.instances import semantic_to_instances
from omniseg.inference.deploy.optimize import fold_batchnorm
from omniseg.inference.tiling.sliding_window import sliding_window
from omniseg.inference.tiling.tiled_instances import tiled_instances
from omniseg.inference.tiling.tta import parse_tta, with_instance_tta, with_tta
from omniseg.models.hub import ModelCard, load_model
from omniseg.models.instance.mask_rcnn import at_native_resolution
from omniseg.models.panoptic.merge import merge_prediction
from omniseg.models.semantic.base import is_volumetric

BACKENDS = ("torch", "onnxruntime", "openvino")


class Predictor:
    """Predict with a trained model: class masks (semantic models), instances (instance and panoptic
    models) or panoptic segments (panoptic models).

    Args:
        model: a run directory (``model.json`` + ``model.safetensors``) or a loaded model with ``.card``.
        device: ``"cpu"``, ``"cuda"``, ... (default: CUDA when available).
        optimize: fold BatchNorm into convolutions and use channels-last memory (same outputs, faster).
        backend: ``"torch"``, ``"onnxruntime"`` (extra ``onnx``) or ``"openvino"`` (extra ``openvino``), the last two
            for 2D semantic runs: tiles run through that runtime, from ``exported`` (a file ``omniseg export`` wrote:
            ``.onnx``, float32 or INT8, for onnxruntime; an OpenVINO ``.xml`` for openvino), or for onnxruntime
            without it the float32 model exported at the training size into the run directory the first time.
        precision: the torch backend's arithmetic: ``"32"``, ``"bf16"`` (autocast; softmax and outputs in float32)
            or ``"auto"``: bfloat16 where a forward pass of this model at its tile size measures faster on this
            device (:func:`~omniseg.core.precision.choose_inference_precision`; never without bfloat16 in hardware).
            ``precision_facts`` holds the choice and why.

    Example:
        >>> mask = Predictor("runs/demo").predict("scene.png")  # doctest: +SKIP
        >>> mask.shape  # (H, W) class ids  # doctest: +SKIP
    """

    def __init__(self, model: str | Path | nn.Module, *, device: str | None = None, optimize: bool = True,
                 backend: str = "torch", exported: str | Path | None = None, precision: str = "32") -> None:
        where = "the model's card" if isinstance(model, nn.Module) else model
        run_dir = None if isinstance(model, nn.Module) else Path(model)
        if not isinstance(model, nn.Module):
            model = load_model(model)
        card: ModelCard | None = getattr(model, "card", None)
        if card is None:
            raise OmnisegError("the model has no .card; load it with omniseg.load_model(run_dir)")
        self.card, self.info = card, card.info
        self.device = resolve_device(device)
        # tiles per forward pass: one on a CPU (measured faster per tile than four there, at a quarter of the
        # activations' memory: 86 against 110 ms a 512-pixel tile for a small U-Net), four on a GPU
        self.tiles_per_forward = 1 if self.device.type == "cpu" else 4
        self.task = card.task
        self.volumetric = self.task == "semantic" and is_volumetric(model)
        if self.task == "semantic" and not self.volumetric:  # detectors normalise their input themselves
            mean, std = card.normalisation(where)
            self._mean = torch.tensor(mean, device=self.device).view(1, -1, 1, 1)
            self._std = torch.tensor(std, device=self.device).view(1, -1, 1, 1)
            self._channels = card.kwargs.get("in_channels", 3)
        model = model.eval().to(self.device)
        self._memory_format = torch.contiguous_format
        if optimize and backend == "torch" and self.task == "semantic" and not self.volumetric:  # runtimes never run it
            example = torch.randn(1, card.kwargs.get("in_channels", 3), 64, 64, device=self.device)
            # a model loaded here is folded in place (one copy of the weights in memory), or loaded again unfolded
            model = fold_batchnorm(model, example, in_place=run_dir is not None) or load_model(run_dir).to(self.device)
            if self.device.type == "cpu":
                self._memory_format = torch.channels_last
                model = model.to(memory_format=torch.channels_last)
        self.model = model
        self._runtime = None
        self._native_detector = None
        self.backend = backend
        if backend not in BACKENDS:
            raise OmnisegError(f"backend {backend!r} is unknown; use {', '.join(BACKENDS)}")
        if backend != "torch":
            if self.task != "semantic" or self.volumetric:
                raise OmnisegError(f"the {backend} backend runs 2D semantic models; use the torch backend for this run")
            from omniseg.inference.deploy.runtimes import runtime_tiles

            self._runtime = runtime_tiles(backend, exported, run_dir, int(self.tile_size))
            precision = "32"  # the runtime computes as its file says
        self.precision, self.precision_facts = choose_inference_precision(precision, self.device, self._example_forward())

    def _example_forward(self) -> Callable[[], object]:
        """One forward pass of the model at the size it will see (a tile; a detector's resized image), for timing."""
        if self.task != "semantic":
            size = int(getattr(getattr(self.model, "transform", None), "min_size", (512,))[0])
            image = torch.rand(3, size, size, device=self.device)
            return lambda: self.model([image])
        shape = self.tile_size if self.volumetric else [int(self.tile_size)] * 2
        x = torch.zeros(1, self._channels if not self.volumetric else self.card.kwargs.get("in_channels", 1), *shape,
                        device=self.device)
        x = x.contiguous(memory_format=self._memory_format) if not self.volumetric else x
        return lambda: self.model(x)

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

    @property
    def tile_size(self) -> int | list[int]:
        """A sliding-window tile by default: the size (the patch, for volumes) the model was trained at; 512
        (128 for volumes) for runs that did not record it."""
        if self.volumetric:
            return list(self.card.preprocessing.get("patch_size") or [128] * 3)
        return int(self.card.preprocessing.get("img_size") or 512)

    def probabilities_of(self, tiles: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``[B, K, *spatial]`` (on the device) of a batch: uint8 images (or float in
        0..1), or volumes already normalised."""
        x = tiles.to(self.device) if self.volumetric else self.preprocess(tiles)
        if self._runtime is not None:
            return self._runtime(x).to(self.device).float().softmax(1)
        with autocast(self.precision, self.device):
            logits = self.model(x)
        return logits.float().softmax(1)

    def forward_of(self, tta: str | None) -> Callable[[torch.Tensor], torch.Tensor]:
        """The tile function of sliding windows: :meth:`probabilities_of`, averaged over the ``tta`` spec."""
        return with_tta(self.probabilities_of, parse_tta(tta, spatial_dims=3 if self.volumetric else 2))

    @torch.inference_mode()
    def predict_proba(self, image: ImageLike, *, tile: int | Sequence[int] | None = None, overlap: float = 0.5,
                      tta: str | None = None, batch_size: int | None = None) -> torch.Tensor:
        """Class probabilities ``[K, H, W]`` (float32, on the CPU): the whole image in one pass, or tile by tile
        with ``tile`` (see :mod:`~omniseg.inference.tiling.sliding_window`; ``tile=0`` is the model's training size),
        averaged over the test-time augmentations of ``tta`` (see :func:`~omniseg.inference.tiling.tta.parse_tta`);
        ``batch_size`` tiles a forward pass (default :attr:`tiles_per_forward`)."""
        self._check_images()
        image = to_image_tensor(image)
        forward = self.forward_of(tta)
        if tile is None:
            return forward(image.unsqueeze(0))[0].cpu()
        return sliding_window(forward, image, self.info.num_classes, tile=tile or self.tile_size, overlap=overlap,
                              batch_size=batch_size or self.tiles_per_forward, device=self.device)

    @torch.inference_mode()
    def predict_batch(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``[N, 3, H, W]`` -> class ids ``[N, H, W]`` (int64, on the CPU)."""
        x = self.preprocess(images)
        if self._runtime is not None:
            return class_ids(self._runtime(x), 1).cpu()
        with autocast(self.precision, self.device):
            logits = self.model(x)
        return class_ids(logits.float(), 1).cpu()

    def predict(self, image: ImageLike, *, tile: int | Sequence[int] | None = None, overlap: float = 0.5,
                tta: str | None = None) -> np.ndarray:
        """Class ids ``[H, W]`` (int64) for one image of any size (``tile``, ``overlap`` and ``tta`` as in
        :meth:`predict_proba`)."""
        if tile is None:
            if not tta:
                return self.predict_batch(to_image_tensor(image).unsqueeze(0))[0].numpy()
            return class_ids(self.predict_proba(image, tta=tta)).numpy()
        self._check_images()
        with torch.inference_mode():
            return sliding_window(self.forward_of(tta), to_image_tensor(image), self.info.num_classes, tile=tile or self.tile_size,
                                  overlap=overlap, device=self.device, labels=True).numpy()

    @torch.inference_mode()
    def _detect(self, image: ImageLike, *, native: bool = False) -> dict:
        """The detector's raw output for one image, resized as in training (to the model's ``min_size``), or
        seen at its own resolution with ``native`` (tiles of a large image)."""
        x = to_image_tensor(image) if not isinstance(image, torch.Tensor) else image
        x = x.to(self.device, torch.float32) / 255 if x.dtype == torch.uint8 else x.to(self.device, torch.float32)
        if native and self._native_detector is None:
            self._native_detector = at_native_resolution(self.model)
        with autocast(self.precision, self.device):
            output = (self._native_detector if native else self.model)([x])[0]
        return {k: v.cpu().float() if v.is_floating_point() else v.cpu() for k, v in output.items()}

    @torch.inference_mode()
    def predict_instances(self, image: ImageLike, *, score_threshold: float = 0.5, mask_threshold: float = 0.5,
                          split_touching: bool = False, tile: int | None = None, overlap: float = 0.5,
                          tta: str | None = None) -> dict:
        """Instances of one image of any size, best first: ``masks`` bool [N, H, W], ``labels`` int64 [N],
        ``scores`` float32 [N], ``boxes`` float32 [N, 4] (XYXY pixels); those scoring under
        ``score_threshold`` are left out, mask probabilities are cut at ``mask_threshold``. With ``tile``
        (``0``: the training size) the detector runs tile by tile, each tile at its own resolution (not resized),
        and the tiles' detections are merged (see :mod:`~omniseg.inference.tiling.tiled_instances`; ``masks`` are then
        an :class:`~omniseg.core.instance_masks.InstanceMasks`, held as crops, which reads as the array);
        ``tta`` merges the detections of each augmented view (see :func:`~omniseg.inference.tiling.tta.with_instance_tta`).

        A semantic model answers too: the connected regions of its thing classes (all classes but 0 when the
        dataset names no things) are the instances, touching ones split by a watershed with
        ``split_touching``, each scored by its mean class probability."""
        if self.task == "semantic":
            output = self._instances_from_classes(image, split_touching, tile=tile, overlap=overlap, tta=tta)
            masks = output["masks"]
        else:
            augmentations = parse_tta(tta, spatial_dims=2)
            if tile is not None:
                detect = with_instance_tta(functools.partial(self._detect, native=True), augmentations)
                return tiled_instances(detect, to_image_tensor(image), tile=tile or self.tile_size, overlap=overlap,
                                       score_threshold=score_threshold, mask_threshold=mask_threshold)
            detect = with_instance_tta(self._detect, augmentations)
            output = {k: np.asarray(v) for k, v in detect(to_image_tensor(image)).items()}
            masks = output["masks"][:, 0] >= mask_threshold
        keep = output["scores"] >= score_threshold
        order = np.argsort(-output["scores"][keep], kind="stable")
        return {"masks": masks[keep][order], "labels": output["labels"][keep][order], "scores": output["scores"][keep][order],
                "boxes": output["boxes"][keep][order]}

    def _instances_from_classes(self, image: ImageLike, split_touching: bool, **tiling) -> dict:
        probabilities = self.predict_proba(image, **tiling).numpy()
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
    def predict_volume(self, volume: np.ndarray | torch.Tensor, *, tile: int | Sequence[int] | None = None, overlap: float = 0.5,
                       tta: str | None = None, batch_size: int = 2) -> np.ndarray:
        """Class ids ``[D, H, W]`` (int64) for one volume ``[C, D, H, W]`` (or ``[D, H, W]``) of any size,
        normalised as in training (z-score per channel); ``tile`` (``0``: the training patch), ``overlap`` and
        ``tta`` (e.g. ``"flips"``) as in :meth:`predict_proba`."""
        if not self.volumetric:
            raise OmnisegError(f"{self.card.architecture} is a 2D model; use predict(image)")
        x = torch.from_numpy(np.array(volume, dtype=np.float32))  # a copy: volumes often come read-only (memory maps)
        x = x[None] if x.ndim == 3 else x
        if x.ndim != 4:
            raise OmnisegError(f"expected a volume [C, D, H, W] or [D, H, W], got shape {tuple(x.shape)}")
        x = VolumeTransform()({"image": x})["image"]
        forward = self.forward_of(tta)
        if tile is None:
            return class_ids(forward(x.unsqueeze(0))[0]).cpu().numpy()
        return sliding_window(forward, x, self.info.num_classes, tile=tile or self.tile_size, overlap=overlap,
                              batch_size=batch_size, device=self.device, labels=True).numpy()
