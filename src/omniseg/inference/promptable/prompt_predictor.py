"""Promptable prediction: an image encoded once, then masks for points, boxes and mask prompts (one prompt or
a batch of them per call), with Segment Anything or without weights (GrabCut, the random walker)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from omniseg.errors import ConfigError, OmnisegError
from omniseg.core.device import resolve_device
from omniseg.core.precision import autocast, resolve_precision
from omniseg.data.imageio import ImageLike, rgb_uint8
from omniseg.models.promptable import Sam, Sam2


@dataclass
class PromptResult:
    """Masks for the prompts of one call. For a single prompt: ``masks`` ``[C, H, W]`` bool (logits when asked),
    ``scores`` ``[C]`` (the model's IoU predictions; NaN for engines without one), ``low_res_logits``
    ``[C, h, w]`` (feed one back as ``mask_input``); a batch of B prompts adds a leading ``B`` axis."""

    masks: np.ndarray
    scores: np.ndarray
    low_res_logits: np.ndarray | None


@dataclass
class Prompts:
    """Checked prompts in image pixels: ``points`` ``[B, N, 2]`` + ``labels`` ``[B, N]``, ``boxes`` ``[B, 4]``,
    ``mask_input`` ``[B, 1, h, w]`` (each may be None), and whether the caller gave a single prompt."""

    points: np.ndarray | None
    labels: np.ndarray | None
    boxes: np.ndarray | None
    mask_input: np.ndarray | None
    single: bool

    @property
    def batch(self) -> int:
        return next(a.shape[0] for a in (self.points, self.boxes, self.mask_input) if a is not None)


def check_prompts(size: tuple[int, int], points=None, labels=None, boxes=None, mask_input=None) -> Prompts:
    """Validate prompts against an image of ``size`` (H, W): points inside it with labels 0/1 (positives by
    default), boxes ``x0, y0, x1, y1`` inside it with ``x0 < x1`` and ``y0 < y1``; one prompt or a batch."""
    height, width = size
    if points is None and boxes is None and mask_input is None:
        raise ConfigError("give a prompt: points (x, y), a box (x0, y0, x1, y1) or a mask input")
    single = True
    if points is not None:
        points = np.asarray(points, dtype=np.float64)
        if points.ndim == 1 and points.shape == (2,):
            points = points[None]
        if points.ndim not in (2, 3) or points.shape[-1] != 2 or points.shape[-2] == 0:
            raise ConfigError(f"points must be [N, 2] or [B, N, 2] (x, y) pixels, got shape {points.shape}")
        labels = np.ones(points.shape[:-1], np.int64) if labels is None else np.asarray(labels, dtype=np.int64).reshape(points.shape[:-1])
        bad = ~np.isin(labels, (0, 1))
        if bad.any():
            raise ConfigError(f"point labels are 1 (object) or 0 (background), got {int(labels[bad][0])}")
        outside = (points[..., 0] < 0) | (points[..., 0] >= width) | (points[..., 1] < 0) | (points[..., 1] >= height)
        if outside.any():
            x, y = points[outside][0]
            raise ConfigError(f"point ({x:g}, {y:g}) is outside the {width} x {height} image; give x in 0..{width - 1}, y in 0..{height - 1}")
        if points.ndim == 3:
            single = False
        else:
            points, labels = points[None], labels[None]
    elif labels is not None:
        raise ConfigError("point labels were given without points")
    if boxes is not None:
        boxes = np.asarray(boxes, dtype=np.float64)
        if boxes.ndim == 2:
            single = False
        boxes = boxes.reshape(-1, 4) if boxes.size % 4 == 0 and boxes.ndim in (1, 2) else None
        if boxes is None or len(boxes) == 0:
            raise ConfigError("a box is x0, y0, x1, y1 (pixels); a batch of boxes is [B, 4]")
        for box in boxes:
            x0, y0, x1, y1 = box
            if not (x0 < x1 and y0 < y1):
                raise ConfigError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is empty: x0 < x1 and y0 < y1 are needed")
            if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
                raise ConfigError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) leaves the {width} x {height} image; clip it to 0..{width}, 0..{height}")
    if mask_input is not None:
        mask_input = np.asarray(mask_input, dtype=np.float32)
        if mask_input.ndim == 2:
            mask_input = mask_input[None]
        if mask_input.ndim == 4:
            single = False
        else:
            mask_input = mask_input[None]
        if mask_input.ndim != 4 or mask_input.shape[1] != 1:
            raise ConfigError(f"mask_input must be [1, h, w] (a previous low_res_logits entry) or [B, 1, h, w], got {mask_input.shape}")
    sizes = {a.shape[0] for a in (points, boxes, mask_input) if a is not None}
    if len(sizes - {1}) > 1:
        raise ConfigError(f"the batched prompts disagree in batch size: {sorted(sizes)}")
    batch = max(sizes)
    grow = (lambda a: a if a is None or a.shape[0] == batch else np.repeat(a, batch, axis=0))
    points, labels, boxes, mask_input = (grow(a) for a in (points, labels, boxes, mask_input))
    return Prompts(points, labels, boxes, mask_input, single and batch == 1)


class PromptPredictor:
    """Segment Anything on one image at a time: :meth:`set_image` encodes it once (recent embeddings are kept,
    up to ``cache_size`` images), then each :meth:`predict` costs one prompt-encoder and decoder call.

    Example:
        >>> predictor = PromptPredictor(create_model("sam_vit_b", checkpoint="sam_vit_b_01ec64.pth"))  # doctest: +SKIP
        >>> predictor.set_image("photo.jpg")  # doctest: +SKIP
        >>> result = predictor.predict(points=[[500, 375]], labels=[1])  # doctest: +SKIP
        >>> best = result.masks[result.scores.argmax()]  # doctest: +SKIP
    """

    def __init__(self, model: Sam | Sam2, *, device: str | None = None, cache_size: int = 4, precision: str = "32") -> None:
        if not isinstance(model, (Sam, Sam2)):
            raise ConfigError(f"the prompt predictor takes a Segment Anything model, got {type(model).__name__}")
        self.device = resolve_device(device)
        # the image encoder's arithmetic ("auto": bfloat16 where this device multiplies matrices faster in it, as a
        # transformer encoder's time is its matrix products'); the prompt encoder and decoder stay float32
        self.precision = resolve_precision(precision, self.device)
        self.model = model.eval().to(self.device)
        self.cache_size = cache_size
        self._cache: OrderedDict[str, tuple[torch.Tensor, tuple[int, int], tuple[int, int]]] = OrderedDict()
        self.features: torch.Tensor | tuple[torch.Tensor, ...] | None = None  # with high-resolution features: a tuple

    def set_image(self, image: ImageLike) -> None:
        """Encode ``image`` (or take its embedding from the cache) for the following :meth:`predict` calls."""
        array = rgb_uint8(image)
        key = hashlib.blake2b(array.tobytes(), digest_size=16, person=repr(array.shape).encode()[:16]).hexdigest()
        if key in self._cache:
            self._cache.move_to_end(key)
        else:
            self._cache[key] = self.encode(array)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        self.use_embedding(*self._cache[key])

    def use_embedding(self, features: torch.Tensor, original_size: tuple[int, int], input_size: tuple[int, int]) -> None:
        """Answer the following prompts on an embedding computed by :meth:`encode` (e.g. kept by a server)."""
        self.features, self.original_size, self.input_size = features, original_size, input_size

    @torch.no_grad()
    def encode(self, array: np.ndarray) -> tuple[torch.Tensor, tuple[int, int], tuple[int, int]]:
        """``(embedding, original size, resized input size)`` of a uint8 ``[H, W, 3]`` image (nothing is cached)."""
        with autocast(self.precision, self.device):
            features, input_size = self.model.encode_image(torch.from_numpy(np.ascontiguousarray(array)).to(self.device).permute(2, 0, 1))
        features = tuple(f.float() for f in features) if isinstance(features, tuple) else features.float()
        return features, tuple(array.shape[:2]), input_size

    def embedding(self) -> torch.Tensor:
        """The current image's embedding ``[1, 256, 64, 64]`` (with the high-resolution features of an encoder that
        gives them: a tuple, which the mask decoder takes as it is)."""
        if self.features is None:
            raise OmnisegError("no image is set: call set_image(image) before predict")
        return self.features

    def to_input_frame(self, coords: np.ndarray) -> torch.Tensor:
        """Image pixel coordinates ``[..., 2]`` (x, y) -> the resized input's frame."""
        (old_h, old_w), (new_h, new_w) = self.original_size, self.input_size
        scale = np.array([new_w / old_w, new_h / old_h])
        return torch.as_tensor(coords * scale, dtype=torch.float32, device=self.device)

    @torch.no_grad()
    def decode(self, points: torch.Tensor | None, labels: torch.Tensor | None, boxes: torch.Tensor | None,
               mask_input: torch.Tensor | None, multimask: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Low-resolution logits ``[B, C, h, w]`` and IoU predictions ``[B, C]`` for prompts in the input frame."""
        return self.model.decode_prompts(self.embedding(), points, labels, boxes, mask_input, multimask)

    def upscale(self, low_res: torch.Tensor) -> torch.Tensor:
        """Low-resolution logits -> logits at the image's own size."""
        return self.model.postprocess_masks(low_res, self.input_size, self.original_size)

    def predict(self, points=None, labels=None, boxes=None, mask_input=None, *, multimask: bool = True,
                return_logits: bool = False) -> PromptResult:
        """Masks for points ``[N, 2]`` (x, y pixels) with ``labels`` (1 object, 0 background; default 1), a box
        ``[4]`` (x0, y0, x1, y1), a previous ``low_res_logits`` entry as ``mask_input``, in any combination; or a
        batch: points ``[B, N, 2]``, boxes ``[B, 4]``, mask inputs ``[B, 1, h, w]``, answered in one decoder call.
        ``multimask``: three masks per prompt (best for a single click) instead of one."""
        self.embedding()
        prompts = check_prompts(self.original_size, points, labels, boxes, mask_input)
        expected = tuple(self.model.mask_input_size)
        if prompts.mask_input is not None and tuple(prompts.mask_input.shape[-2:]) != expected:
            raise ConfigError(f"mask_input is {tuple(prompts.mask_input.shape[-2:])} but this model takes {expected} "
                              "(pass a low_res_logits entry of a previous prediction)")
        t = (lambda a, dtype=torch.float32: None if a is None else torch.as_tensor(a, dtype=dtype, device=self.device))
        low_res, scores = self.decode(
            None if prompts.points is None else self.to_input_frame(prompts.points), t(prompts.labels, torch.int64),
            None if prompts.boxes is None else self.to_input_frame(prompts.boxes.reshape(-1, 2, 2)).reshape(-1, 4),
            t(prompts.mask_input), multimask)
        with torch.no_grad():
            masks = self.upscale(low_res)
        masks = masks if return_logits else masks > self.model.mask_threshold
        out = PromptResult(masks.cpu().numpy(), scores.cpu().numpy(), low_res.cpu().numpy())
        return unbatch(out) if prompts.single else out


def unbatch(result: PromptResult) -> PromptResult:
    return PromptResult(result.masks[0], result.scores[0], None if result.low_res_logits is None else result.low_res_logits[0])


class ClassicalPromptEngine:
    """GrabCut (``"grabcut"``) or the random walker (``"random-walker"``) behind the predictor's calls, for a
    machine with no checkpoint: positive points mark the object (disks of ``radius`` px), negative points and
    the outside of a box mark the background; without a box, the image's border is the background sample. One mask per
    prompt (``multimask`` is accepted and gives one); ``scores`` are NaN (no quality estimate);
    ``low_res_logits`` are None and ``mask_input`` is refused."""

    ENGINES = ("grabcut", "random-walker")

    def __init__(self, engine: str, *, radius: int | None = None, iterations: int = 5, beta: float = 130.0) -> None:
        if engine not in self.ENGINES:
            raise ConfigError(f"prompt engine {engine!r} is unknown; use one of {', '.join(self.ENGINES)}")
        self.engine, self.radius, self.iterations, self.beta = engine, radius, iterations, beta
        self.image: np.ndarray | None = None

    def set_image(self, image: ImageLike) -> None:
        self.image = rgb_uint8(image)
        self.original_size = self.image.shape[:2]

    def encode(self, array: np.ndarray) -> tuple[torch.Tensor, tuple[int, int], tuple[int, int]]:
        """The server's embedding contract (see :meth:`PromptPredictor.encode`): an engine's "embedding" is the image."""
        image = torch.from_numpy(rgb_uint8(array))
        size = tuple(image.shape[:2])
        return image, size, size

    def use_embedding(self, features: torch.Tensor, original_size: tuple[int, int], input_size: tuple[int, int]) -> None:
        self.image, self.original_size = features.numpy(), original_size

    def predict(self, points=None, labels=None, boxes=None, mask_input=None, *, multimask: bool = True,
                return_logits: bool = False) -> PromptResult:
        if self.image is None:
            raise OmnisegError("no image is set: call set_image(image) before predict")
        if mask_input is not None:
            raise ConfigError(f"the {self.engine} engine takes no mask input; give points or a box")
        prompts = check_prompts(self.original_size, points, labels, boxes)
        masks = np.stack([self._segment(prompts, i) for i in range(prompts.batch)])[:, None]
        out = PromptResult(masks.astype(np.float32) * 2 - 1 if return_logits else masks,
                           np.full((prompts.batch, 1), np.nan, np.float32), None)
        return unbatch(out) if prompts.single else out

    def _segment(self, prompts: Prompts, index: int) -> np.ndarray:
        from omniseg.classical.interactive import grabcut_segmentation, random_walker_segmentation

        height, width = self.original_size
        marks = np.zeros((height, width), np.int64)  # 1 background, 2 object
        radius = self.radius if self.radius is not None else max(2, round(0.01 * max(height, width)))
        box = None
        if prompts.boxes is not None:
            x0, y0, x1, y1 = prompts.boxes[index]
            box = (int(np.floor(x0)), int(np.floor(y0)), int(np.ceil(x1)), int(np.ceil(y1)))
        if prompts.points is not None:
            ys, xs = np.mgrid[:height, :width]
            for (x, y), label in zip(prompts.points[index], prompts.labels[index]):
                marks[(xs - x) ** 2 + (ys - y) ** 2 <= radius ** 2] = 2 if label == 1 else 1
        if self.engine == "grabcut":
            if box is None and not (marks == 2).any():
                raise ConfigError("GrabCut needs a box or a positive point on the object")
            # clicks alone: the whole image but its 1 px frame is the box (the frame is the background sample)
            box = box if box is not None else (1, 1, width - 1, height - 1)
            return grabcut_segmentation(self.image, box=box, scribbles=marks if marks.any() else None,
                                        iterations=self.iterations).astype(bool)
        if box is not None:
            outside = np.ones((height, width), bool)
            outside[box[1]:box[3], box[0]:box[2]] = False
            marks[outside & (marks == 0)] = 1
        if not (marks == 2).any():
            if box is None:
                raise ConfigError("the random walker needs a box or a positive point on the object")
            cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
            marks[cy, cx] = 2  # the box's centre stands for the object
        if not (marks == 1).any():
            marks[[0, -1], :] = np.where(marks[[0, -1], :] == 0, 1, marks[[0, -1], :])
            marks[:, [0, -1]] = np.where(marks[:, [0, -1]] == 0, 1, marks[:, [0, -1]])
        return random_walker_segmentation(self.image, marks, beta=self.beta) == 1


def load_prompt_model(model: str | Path | Sam | None = None, *, arch: str | None = None, engine: str | None = None,
                      device: str | None = None, precision: str = "32") -> PromptPredictor | ClassicalPromptEngine:
    """A predictor for ``model``: a loaded :class:`Sam`, an omniseg run directory of a promptable model, or a
    checkpoint file with its architecture ``arch`` (``sam_vit_b``, ``sam_vit_l``, ``sam_vit_h``, ``mobile_sam``; an
    official file's name gives it); or ``engine`` ("grabcut", "random-walker") for prompting without weights.
    ``precision``: the image encoder's (see :class:`PromptPredictor`)."""
    from omniseg.models import create_model, list_models, load_model

    if engine is not None:
        if model is not None:
            raise ConfigError("give a model or an engine, not both")
        return ClassicalPromptEngine(engine)
    if isinstance(model, (Sam, Sam2)):
        return PromptPredictor(model, device=device, precision=precision)
    if model is None:
        raise ConfigError("give a promptable model (a run directory, or a checkpoint file with --arch) or --engine grabcut|random-walker")
    path = Path(model)
    if path.is_dir():
        loaded = load_model(path)
        if not isinstance(loaded, (Sam, Sam2)):
            raise ConfigError(f"{path} holds a {loaded.card.task} model ({loaded.card.architecture}), not a promptable one")
        return PromptPredictor(loaded, device=device, precision=precision)
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; give a run directory or a checkpoint file")
    from omniseg.models.promptable.sam import OFFICIAL_ARCHITECTURE

    arch = arch or OFFICIAL_ARCHITECTURE.get(path.name)
    promptable = list_models("promptable")
    if arch not in promptable:
        raise ConfigError(f"which architecture is {path.name}? pass --arch with one of {', '.join(promptable)}"
                          + (f" ({arch!r} is not promptable)" if arch else ""))
    return PromptPredictor(create_model(arch, checkpoint=str(path)), device=device, precision=precision)
