"""Run configuration: dataclasses <-> YAML, with ``--set a.b=c`` overrides.

Every run directory holds the resolved config as ``config.yaml``; loading it back and training
again reproduces the run.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from omniseg.errors import ConfigError


@dataclass
class DataConfig:
    """Where the data is and how batches are made."""

    path: str | None = None
    format: str = "auto"
    ignore_index: int | None = None  # the mask value of unlabelled pixels; None: the dataset's own (classes.json, the format)
    img_size: int = 256  # side of the square training crop
    patch_size: tuple[int, int, int] = (64, 64, 64)  # volumes: the random training crop (D, H, W)
    scale_range: tuple[float, float] = (0.5, 2.0)  # random rescale before the crop
    fit_to_crop: bool = True  # the rescale is relative to the image scaled to fit the crop; false: to its own size
    batch_size: int = 8
    eval_batch_size: int = 4
    num_workers: int = 0
    cache: bool = False  # keep decoded samples in memory (for datasets that fit: skips decoding after the first epoch)
    val_fraction: float = 0.2  # used only when the data has no val split
    split_seed: int = 0
    channels: int | None = None  # the model's input channels: 1 turns images grey, 3 makes them RGB; None: as read (RGB)
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)  # per channel, of 0..1 pixel values (ImageNet's; a plan uses the data's)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    color_jitter: float = 0.3
    hflip: bool = True
    vflip: bool = False
    rot90: bool = False  # random quarter turns (with hflip: every symmetry of the square), for data without an up


@dataclass
class ModelConfig:
    name: str = "unet"
    encoder: str | None = None
    encoder_weights: str | None = None  # None, "imagenet" (timm pretrained) or a weights file
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class LossConfig:
    name: str = "ce+dice"  # terms joined by '+', each optionally weighted: "1.0*ce+0.5*dice"; names: ce, focal, dice,
    # vnet_dice, tversky, focal_tversky, lovasz, ohem
    class_weights: str | list[float] | None = None  # None, "median_frequency" or one weight per class
    label_smoothing: float = 0.0
    focal_gamma: float = 2.0
    tversky_alpha: float = 0.3  # tversky / focal_tversky: weight of false positives
    tversky_beta: float = 0.7  # ... and of false negatives (beta > alpha favours recall of small structures)
    tversky_gamma: float = 0.75  # focal_tversky: the exponent of each class's 1 - Tversky index
    ohem_threshold: float = 0.7  # ohem: pixels whose true-class probability is under this are hard
    ohem_min_kept: int = 100_000  # ohem: at least this many of the hardest pixels per batch
    aux_weight: float = 0.4  # weight of auxiliary-head losses (PSPNet's 0.4), for models that have them


@dataclass
class OptimConfig:
    lr: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "poly"  # poly | cosine | constant
    poly_power: float = 0.9
    warmup_steps: int = 0


@dataclass
class TrainConfig:
    epochs: int | None = 50  # converted to optimiser steps (training is counted in steps; epochs are reported)
    max_steps: int | None = None  # stop after this many optimiser steps (None: the epochs, or the time budget, decide)
    time_budget: float | None = None  # seconds of training (validations included); best weights are kept
    devices: int = 1
    accelerator: str = "auto"
    precision: str = "32-true"  # auto (bf16-mixed where a measured step is faster), 32, bf16-mixed, 16-mixed (GPUs)
    seed: int = 0
    deterministic: bool = True
    early_stopping_patience: int | None = None  # validation rounds without a better val mIoU
    val_every: int = 1  # epochs between validations (converted to steps)
    val_every_steps: int | None = None  # optimiser steps between validations instead (across epochs)
    out: str = "runs/train"
    num_samples: int = 4  # val overlays written to samples/
    channels_last: bool = True  # NHWC memory layout: about 1.5x faster convolutions on CPU
    sync_batchnorm: bool = False  # with devices > 1: BatchNorm statistics over the global batch
    logger: str = "csv"  # experiment trackers, comma-separated: csv (history.csv, always), tensorboard, mlflow, wandb


@dataclass
class PromptConfig:
    """Promptable training (``task: promptable``): the simulated person of Segment Anything's training, its loss,
    what is fine-tuned, and the click evaluation."""

    objects_per_image: int = 8  # objects prompted in each training image (all of them when it has fewer)
    box_fraction: float = 0.5  # share of objects first prompted by a jittered box; the others by a point inside
    box_noise: float = 0.1  # box jitter: std of each coordinate as a share of the box's side, at most 20 px (SAM's)
    corrective_clicks: int = 4  # clicks in the last mask's error region after the first prompt (SAM: 8)
    refine_iterations: int = 1  # more passes with the last mask's logits and no new click (SAM: 2)
    focal_weight: float = 20.0  # the mask loss: focal and Dice at SAM's 20:1
    focal_alpha: float | None = None  # the focal loss's weight of object pixels (1 - it for the background); None: equal
    dice_weight: float = 1.0
    iou_weight: float = 1.0  # MSE of the IoU head against each mask's real IoU
    freeze: list[str] = field(default_factory=list)  # parts kept as they are: image_encoder, prompt_encoder, mask_decoder
    lora_rank: int = 0  # > 0: low-rank adapters on the image encoder's attention, the rest of the encoder frozen
    lora_alpha: float | None = None  # the adapters' scale is alpha / rank (default alpha = rank)
    max_clicks: int = 20  # validation: clicks an object gets at most (NoC counts one never reached as this)
    clip_frames: int = 0  # >= 2: SAM 2 trains on clips of this many frames of a video dataset (0: on images)


@dataclass
class RunConfig:
    task: str = "semantic"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)


def to_dict(config: Any) -> dict[str, Any]:
    """Plain dict (tuples as lists) of a config dataclass, ready for YAML or JSON."""

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))


def from_dict(cls: type, values: dict[str, Any], where: str = "") -> Any:
    """Build dataclass ``cls`` from a nested dict, rejecting unknown keys with close matches."""
    if not isinstance(values, dict):
        raise ConfigError(f"config section {where or 'root'!r} must be a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; known keys: {', '.join(fields)}"
            raise ConfigError(f"unknown config key {where + key!r}{hint}")
        kwargs[key] = _coerce(hints[key], value, where + key)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, key + ".")
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is not type(None):
                try:
                    return _coerce(arg, value, key)
                except ConfigError:
                    continue
        raise ConfigError(f"config key {key!r}: {value!r} matches none of {hint}")
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(f"config key {key!r} needs one or more values, got {value!r}")
        return tuple(_coerce(args[0], v, key) for v in value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"config key {key!r} needs {len(args)} values, got {value!r}")
        return tuple(_coerce(a, v, key) for a, v in zip(args, value))
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {key!r} needs a list, got {value!r}")
        return [_coerce(args[0], v, key) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key!r} needs a mapping, got {value!r}")
        return dict(value)
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):  # YAML 1.1 reads "5e-3" (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"config key {key!r} needs true or false, got {value!r}")
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"config key {key!r} needs an integer, got {value!r}")
    if not isinstance(value, hint):
        raise ConfigError(f"config key {key!r} needs {hint.__name__}, got {value!r}")
    return value


def apply_values(config: RunConfig, assignments: dict[str, Any], *, source: str = "--set") -> RunConfig:
    """Set dotted keys (``{"optim.lr": 0.01}``) and re-validate; unknown keys raise ConfigError."""
    values = to_dict(config)
    for key, value in assignments.items():
        parts = key.strip().split(".")
        node = values
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if not isinstance(child, dict):
                what = "unknown config key" if part not in node else "not a config section:"
                raise ConfigError(f"{source} {key!r}: {what} {'.'.join(parts[: i + 1])!r}")
            node = child
        node[parts[-1]] = value
    return from_dict(RunConfig, values)


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """``["a.b=c", ...]`` -> ``{"a.b": value}``, values parsed as YAML (``3``, ``0.5``, ``[1, 2]``, ``null``)."""
    assignments = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r} is not of the form a.b=c")
        try:
            assignments[key] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: value {raw!r} is not valid YAML ({exc})") from None
    return assignments


def apply_overrides(config: RunConfig, overrides: list[str]) -> RunConfig:
    """Apply ``a.b=c`` overrides (see :func:`parse_overrides`).

    Example:
        >>> apply_overrides(RunConfig(), ["optim.lr=0.01", "model.kwargs.depth=3"]).optim.lr
        0.01
    """
    return apply_values(config, parse_overrides(overrides))


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config sections -> dotted keys (``{"optim": {"lr": 1}}`` -> ``{"optim.lr": 1}``); the free-form
    ``model.kwargs`` stays one value."""
    flat = {}
    for key, value in values.items():
        name = prefix + str(key)
        if isinstance(value, dict) and name != "model.kwargs":
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def load_values(path: str | Path) -> dict[str, Any]:
    """The mapping a YAML config file holds (checked against :class:`RunConfig`, unknown keys refused)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass the path of a YAML file")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    from_dict(RunConfig, values)
    return values


def load_config(path: str | Path) -> RunConfig:
    """Read a YAML config (a partial one is fine: missing keys keep their defaults)."""
    return from_dict(RunConfig, load_values(path))


def config_yaml(config: RunConfig) -> str:
    """``config`` as the YAML text ``load_config`` reads back."""
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def save_config(config: RunConfig, path: str | Path) -> None:
    Path(path).write_text(config_yaml(config))
