"""A dataset's fingerprint and this device's measured speed -> a training plan: a RunConfig with a reason
for each choice (the nnU-Net idea, for every 2D and 3D dataset omniseg reads, on CPUs as on GPUs)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omniseg.config import RunConfig, apply_values
from omniseg.core.precision import choose_training_precision
from omniseg.data.formats import DataSource, load_dataset, require_instances
from omniseg.errors import ConfigError
from omniseg.models import MODELS, list_models
from omniseg.plan.fingerprint import Fingerprint, fingerprint
from omniseg.plan.measure import Candidate, loader_seconds, step_seconds

# Seconds a plan is made for when no time budget is given (the run then stops at the steps that fit it).
DEFAULT_BUDGET = {"cpu": 1800.0, "cuda": 3600.0}
# The largest square crop (2D) and patch voxels (3D) a device trains on.
MAX_CROP = {"cpu": 256, "cuda": 512}
MAX_PATCH_VOXELS = {"cpu": 48**3, "cuda": 128**3}
# Optimiser steps a run should reach for the model to converge; the costliest candidate that reaches them is chosen.
TARGET_STEPS = 500
VALIDATION_SHARE = 0.08  # of the budget, at most, spent validating
MAX_VALIDATIONS = 10
SYMMETRY_LIMIT = 0.1  # orientation / mirror distances under this: the frame's up (or left) carries no meaning


@dataclass
class Plan:
    """A training plan: ``values`` (dotted config keys, as ``--set`` takes them) with ``reasons`` (the same
    keys, why), the ``fingerprint`` it follows from, and what was ``measured`` on the device.

    ``config(base)`` applies the values to a RunConfig; ``save(folder)`` writes ``plan.json`` and ``plan.md``.
    """

    data: str
    task: str
    device: str
    time_budget: float
    budget_given: bool
    fingerprint: Fingerprint
    values: dict[str, Any] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    measured: dict[str, Any] = field(default_factory=dict)

    def set(self, key: str, value: Any, reason: str) -> None:
        self.values[key], self.reasons[key] = value, reason

    def config(self, base: RunConfig | None = None) -> RunConfig:
        """``base`` (default: omniseg's defaults) with the plan's values."""
        return apply_values(base or RunConfig(), self.values, source="plan")

    def to_dict(self) -> dict:
        return {"data": self.data, "task": self.task, "device": self.device, "time_budget": self.time_budget,
                "budget_given": self.budget_given, "values": self.values, "reasons": self.reasons,
                "measured": self.measured, "fingerprint": self.fingerprint.to_dict()}

    def explain(self) -> str:
        """The plan as Markdown: the fingerprint's facts, then each choice with its reason."""
        fp = self.fingerprint
        size = " x ".join(map(str, fp.size_median))
        lines = [f"# Training plan for {self.data}", "",
                 f"{self.task} segmentation on {self.device}, for {self.time_budget:.0f} s of training"
                 + ("" if self.budget_given else " (no --time-budget given: the run stops at the steps that fit it)"), "",
                 "## Fingerprint", "",
                 f"- {fp.num_train} training and {fp.num_val} validation {'volumes' if fp.volumetric else 'images'}, "
                 f"median size {size} (from {' x '.join(map(str, fp.size_min))} to {' x '.join(map(str, fp.size_max))})",
                 f"- {fp.channels} channel(s){' (grey)' if fp.grey and not fp.volumetric else ''}, {fp.bit_depth}-bit; "
                 f"intensity mean {fp.intensity_mean}, std {fp.intensity_std}",
                 "- classes (share of labelled pixels): " + ", ".join(
                     f"{n} {f:.1%}" for n, f in zip(fp.class_names, fp.class_frequency)),
                 f"- place in the frame: top/bottom distance {fp.orientation:.3f}, left/right {fp.mirror:.3f}"]
        if fp.spacing_median:
            lines.append(f"- median voxel spacing (D, H, W): {fp.spacing_median}")
        if fp.object_size:
            lines.append(f"- {fp.objects_per_image} objects an image, sizes (sqrt area, 10/50/90 %): {fp.object_size} px")
        lines += ["", "## Choices", ""]
        lines += [f"- `{key}` = `{json.dumps(value)}`: {self.reasons[key]}" for key, value in self.values.items()]
        if self.measured:
            lines += ["", "## Measured on this device", "", "```", json.dumps(self.measured, indent=2), "```"]
        return "\n".join(lines) + "\n"

    @classmethod
    def load(cls, folder: str | Path) -> Plan:
        """The plan saved in ``folder`` (``plan.json``), as a run directory holds it."""
        path = Path(folder) / "plan.json"
        try:
            values = json.loads(path.read_text())
            return cls(values["data"], values["task"], values["device"], values["time_budget"], values["budget_given"],
                       Fingerprint(**values["fingerprint"]), values["values"], values["reasons"], values.get("measured", {}))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"cannot read the plan {path} ({exc}); train with --no-plan or plan again without --resume") from None

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "plan.json").write_text(json.dumps(self.to_dict(), indent=2))
        (folder / "plan.md").write_text(self.explain())


def make_plan(data: str | Path | DataSource, *, task: str = "semantic", time_budget: float | None = None, device: str = "cpu",
              format: str = "auto", ignore_index: int | None = None, measure: bool = True,
              model: Candidate | None = None, precision: str = "auto") -> Plan:
    """Fingerprint ``data`` and plan its training on ``device`` for ``time_budget`` seconds.

    The architecture is chosen by measuring candidates' training steps on this device (``measure=False``
    estimates from operation counts instead, for a quick look); ``model`` fixes it instead (the user's
    choice: the plan measures it and fits the rest around it). ``task`` is "semantic", "instance" or
    "panoptic". ``precision`` ``"auto"`` measures the chosen model's step in bfloat16 too, where the processor has
    it, and trains in the faster (:func:`~omniseg.core.precision.choose_training_precision`); the step count
    follows the chosen precision's step.

    Example:
        >>> plan = make_plan("data/isbi2012", time_budget=300)  # doctest: +SKIP
        >>> plan.values["data.channels"], plan.reasons["data.channels"]  # doctest: +SKIP
        (1, 'the images are grey: ...')
    """
    if device not in DEFAULT_BUDGET:
        raise ConfigError(f"plan device {device!r} is unknown; use cpu or cuda")
    if time_budget is not None and time_budget <= 0:
        raise ConfigError(f"the time budget must be positive, got {time_budget}")
    source = data if not isinstance(data, (str, Path)) else load_dataset(data, format=format, ignore_index=ignore_index)
    fp = fingerprint(source)
    budget = time_budget or DEFAULT_BUDGET[device]
    plan = Plan(str(data if isinstance(data, (str, Path)) else getattr(source, "root", "")), task, device, budget,
                time_budget is not None, fp)
    if isinstance(data, (str, Path)):
        plan.set("data.path", str(data), "the dataset planned for")
        if format != "auto":
            plan.set("data.format", format, "the format asked for")
    plan.set("task", task, "the task asked for")
    if model is not None and not _takes(model.name, task, fp.volumetric):
        model = None  # it cannot train on this data: training refuses it, naming the models that can
    if task in ("instance", "panoptic"):
        _plan_objects(plan, source, measure, model, precision)
    elif fp.volumetric:
        _plan_volumes(plan, source, measure, model, precision)
    else:
        _plan_images(plan, source, measure, model, precision)
    return plan


def _takes(name: str, task: str, volumetric: bool) -> bool:
    """Whether registered model ``name`` trains for ``task`` on 2D images (or on volumes)."""
    return name in list_models(task) and bool(MODELS.meta(name).get("volumetric")) == volumetric


def _precision(plan: Plan, asked: str, float32_step: float, measure: bool, step_of) -> float:
    """Set ``train.precision`` for the ``asked`` one (see :func:`make_plan`) and return the step time in it;
    ``step_of(precision)`` measures the chosen model's step in one (its float32 step, ``float32_step``, is known)."""
    if not measure and asked == "auto":
        plan.set("train.precision", "auto", "chosen when training starts, by measuring the model's step in each precision")
        return float32_step
    chosen, facts = choose_training_precision(asked, plan.device, lambda p: float32_step if p == "32-true" else step_of(p))
    plan.set("train.precision", chosen, facts["reason"])
    if "step_seconds" in facts:
        plan.measured["precision_step_seconds"] = facts["step_seconds"]
        return facts["step_seconds"][chosen]
    return float32_step


def _set_model(plan: Plan, candidate: Candidate, step: float, chosen: bool, what: str) -> None:
    kwargs = dict(candidate.kwargs)
    encoder = kwargs.pop("encoder", None)
    plan.set("model.name", candidate.name, (f"{candidate.description}: the costliest candidate whose measured step "
             f"({step:.3f} s for {what}) reaches {TARGET_STEPS} steps in the budget") if chosen
             else f"the model asked for (a measured step: {step:.3f} s for {what})")
    plan.set("model.encoder", encoder, "the built-in encoder (nothing is downloaded)" if encoder is None else "the encoder asked for")
    plan.set("model.kwargs", kwargs, "the candidate's shape" if chosen else "the model options asked for")


def _normalisation(plan: Plan) -> None:
    fp = plan.fingerprint
    plan.set("data.mean", fp.intensity_mean, "the training images' own mean per channel (of 0..1 values), "
             + ("not ImageNet's: these are not colour photographs" if not fp.colour_photographs else "measured, not assumed"))
    plan.set("data.std", [max(v, 1e-3) for v in fp.intensity_std], "the training images' own standard deviation per channel")


def _augmentation(plan: Plan, *, detector: bool = False) -> None:
    fp = plan.fingerprint
    free = fp.orientation < SYMMETRY_LIMIT
    plan.set("data.hflip", fp.mirror < SYMMETRY_LIMIT,
             f"left and right hold the same classes (distance {fp.mirror:.3f})" if fp.mirror < SYMMETRY_LIMIT
             else f"the classes' place differs between left and right (distance {fp.mirror:.3f})")
    reason = (f"the classes have no up (top/bottom distance {fp.orientation:.3f} < {SYMMETRY_LIMIT}): every symmetry of the square"
              if free else f"the classes have a place in the frame (top/bottom distance {fp.orientation:.3f}): no turns, no vertical flips")
    plan.set("data.vflip", free, reason)
    plan.set("data.rot90", free and not detector, reason if not detector else "detectors learn slower with quarter turns")
    jitter = 0.2 if fp.colour_photographs else 0.0
    plan.set("data.color_jitter", jitter, "colour photographs: brightness, contrast, saturation and hue jitter" if jitter
             else f"{'grey' if fp.grey else 'non-photographic'} images: colour jitter would invent colours the data never has")


def _validation(plan: Plan, steps: int, step_seconds: float, val_seconds: float) -> None:
    """Validations at most ``VALIDATION_SHARE`` of the budget (each about ``val_seconds``), by steps."""
    count = int(min(MAX_VALIDATIONS, max(1, VALIDATION_SHARE * plan.time_budget // max(val_seconds, 1e-6))))
    every = max(1, steps // count)
    plan.set("train.val_every_steps", every,
             f"{count} validation(s) of about {val_seconds:.1f} s each over ~{steps} steps: at most "
             f"{VALIDATION_SHARE:.0%} of the budget, counted in steps ({plan.fingerprint.num_train} training images make "
             "an epoch of only a few steps)")
    plan.measured["validation_seconds_estimate"] = round(val_seconds, 2)


def _stop_rule(plan: Plan, step: float) -> int:
    """The steps that fit the budget (with the validations' share) and the rule that stops the run."""
    steps = max(1, int(plan.time_budget * (1 - VALIDATION_SHARE) / step))
    if plan.budget_given:
        plan.set("train.time_budget", plan.time_budget, "the budget asked for: no step is started that cannot end in it")
        plan.set("train.max_steps", None, f"the budget ends the run (about {steps} steps at {step:.3f} s each)")
    else:
        plan.set("train.time_budget", None, "no budget was given: the run is counted in steps")
        plan.set("train.max_steps", steps, f"the steps that fit {plan.time_budget:.0f} s at the measured {step:.3f} s a step")
    plan.set("train.epochs", None, "training is counted in optimiser steps; epochs are only reported")
    return steps


def _optimiser(plan: Plan, steps: int, lr: float) -> None:
    warmup = max(1, min(250, steps // 20))
    plan.set("optim.lr", lr, "AdamW at this rate with BatchNorm networks trained from scratch, after a warm-up")
    plan.set("optim.warmup_steps", warmup, "5% of the planned steps (at most 250): a linear warm-up")
    plan.set("optim.schedule", "poly", "poly decay to zero at the end of the run (or of the time budget)")


def _cache(plan: Plan, pixels_per_sample: int) -> None:
    fp = plan.fingerprint
    bytes_needed = fp.num_train * pixels_per_sample * fp.channels * (1 if fp.bit_depth == 8 else 4)
    cache = bytes_needed < 2**31
    plan.set("data.cache", cache, f"the decoded training images take about {bytes_needed / 2**20:.0f} MiB: "
             + ("kept in memory after the first read" if cache else "too many to keep in memory"))


def _candidates_2d(fp: Fingerprint, crop: int) -> list[Candidate]:
    """U-Nets from the cheapest to the widest: behind a stride-2 stem with a light full-resolution branch (a
    third of the cost of the paper's layout) at widths 8, 16 and 32, then the full-resolution layout at 16 and 32."""
    depth = max(2, min(5, round(math.log2(crop / 16))))
    stem = {"upsampling": "bilinear", "depth": max(2, depth - 1), "stem_stride": 2}
    full = {"upsampling": "bilinear", "depth": depth}
    return [
        Candidate("unet", {**stem, "base_channels": 8, "full_channels": 8}, "U-Net behind a stride-2 stem with a full-resolution branch, width 8"),
        Candidate("unet", {**stem, "base_channels": 16, "full_channels": 16}, "U-Net behind a stride-2 stem with a full-resolution branch, width 16"),
        Candidate("unet", {**stem, "base_channels": 32, "full_channels": 16}, "U-Net behind a stride-2 stem with a full-resolution branch, width 32"),
        Candidate("unet", {**full, "base_channels": 16}, "full-resolution U-Net, width 16"),
        Candidate("unet", {**full, "base_channels": 32}, "full-resolution U-Net, width 32"),
    ]


def _choose(plan: Plan, candidates: list[Candidate], shape: tuple[int, ...], batch: int, measure: bool) -> tuple[Candidate, float]:
    """The costliest of ``candidates`` (ordered by cost) whose measured step lets the budget reach
    :data:`TARGET_STEPS` (measuring stops at the first that does not), else the cheapest."""
    fp = plan.fingerprint
    timings = {}
    available = plan.time_budget * (1 - VALIDATION_SHARE)
    chosen = None
    for candidate in candidates:
        seconds = step_seconds(candidate, channels=fp.channels, num_classes=fp.num_classes, shape=shape, batch=batch,
                               device=plan.device, measure=measure)
        timings[candidate.description] = round(seconds, 4)
        fits = available / seconds >= TARGET_STEPS
        if chosen is None or fits:
            chosen = (candidate, seconds)
        if not fits:
            break
    plan.measured["step_seconds"] = timings
    plan.measured["batch"], plan.measured["shape"] = batch, list(shape)
    return chosen


def _plan_images(plan: Plan, source: DataSource, measure: bool, model: Candidate | None, precision: str) -> None:
    fp = plan.fingerprint
    short = min(fp.size_median)
    cap = MAX_CROP[plan.device]
    crop = min(cap, max(64, short // 32 * 32)) if short >= 64 else max(32, -(-short // 16) * 16)
    batch = 8
    plan.set("data.channels", fp.channels, "the images are grey: one input channel" if fp.grey
             else f"the images have {fp.channels} channels")
    _normalisation(plan)
    plan.set("data.img_size", crop, f"square crops of {crop}: the median image is {' x '.join(map(str, fp.size_median))}, "
             f"and {cap} is the most a {plan.device} step affords")
    plan.set("data.fit_to_crop", False, "crops at the images' own resolution, the one whole-image validation and prediction see")
    plan.set("data.scale_range", [0.7, 1.4], "scale jitter around the own resolution (nnU-Net's range)")
    _augmentation(plan)
    plan.set("data.batch_size", batch, "8 crops a step")
    pixels = fp.size_median[0] * fp.size_median[1]
    plan.set("data.eval_batch_size", max(1, min(16, 2**22 // max(pixels, 1))), "whole validation images, about 4 Mpx a batch")
    _cache(plan, pixels)
    candidate, step = _choose(plan, [model] if model else _candidates_2d(fp, crop), (crop, crop), batch, measure)
    step = _precision(plan, precision, step, measure, lambda p: step_seconds(
        candidate, channels=fp.channels, num_classes=fp.num_classes, shape=(crop, crop), batch=batch, device=plan.device,
        precision=p))
    wait = loader_seconds(plan.config(), source, batches=3) if measure else 0.0
    plan.measured["loader_seconds_per_batch"] = round(wait, 4)
    workers = 0 if wait < 0.1 * step else 2
    plan.set("data.num_workers", workers, f"the loader makes a batch in {wait:.3f} s against a {step:.3f} s step"
             + (": the main process keeps up" if workers == 0 else ": worker processes keep the model fed"))
    _set_model(plan, candidate, step, model is None, f"{batch} x {crop}^2")
    plan.set("loss.name", "ce+dice", _loss_reason(fp))
    steps = _stop_rule(plan, step)
    _optimiser(plan, steps, 3e-3)
    val_pixels = fp.num_val * pixels if fp.num_val else 0.2 * fp.num_train * pixels
    _validation(plan, steps, step, step * val_pixels / (batch * crop * crop) / 3)


def _loss_reason(fp: Fingerprint) -> str:
    present = [(f, n) for f, n in zip(fp.class_frequency, fp.class_names) if f > 0]
    rarest = min(present) if present else (0.0, "-")
    return (f"cross entropy for calibrated pixels plus Dice, which weighs every class alike whatever its share "
            f"(the rarest, {rarest[1]}, holds {rarest[0]:.1%} of the pixels)")


def _plan_volumes(plan: Plan, source: DataSource, measure: bool, model: Candidate | None, precision: str) -> None:
    fp = plan.fingerprint
    spacing = fp.spacing_median or [1.0, 1.0, 1.0]
    shape = fp.size_median
    patch = anisotropic_patch(spacing, shape, MAX_PATCH_VOXELS[plan.device])
    plan.set("data.patch_size", patch, f"a patch of about equal physical extent on each axis (median spacing {spacing}), "
             f"within the median volume {shape} and {MAX_PATCH_VOXELS[plan.device]:,} voxels")
    plan.set("data.hflip", True, "volumes are flipped along each axis (no axis has a meaning for the classes' shapes)")
    plan.set("data.batch_size", 2, "two patches a step (nnU-Net's)")
    plan.set("data.eval_batch_size", 1, "whole volumes, one at a time")
    plan.set("data.cache", True, "volumes are decoded once and kept")
    depth = max(1, min(4, int(math.log2(max(min(patch), 2) / 4))))
    candidates = [Candidate("unet3d", {"base_channels": width, "depth": depth}, f"3D U-Net, width {width}, {depth} poolings")
                  for width in (8, 16, 32)]
    candidate, step = _choose(plan, [model] if model else candidates, tuple(patch), 2, measure)
    step = _precision(plan, precision, step, measure, lambda p: step_seconds(
        candidate, channels=fp.channels, num_classes=fp.num_classes, shape=tuple(patch), batch=2, device=plan.device,
        precision=p))
    _set_model(plan, candidate, step, model is None, f"2 x {' x '.join(map(str, patch))}")
    plan.set("loss.name", "ce+dice", _loss_reason(fp))
    steps = _stop_rule(plan, step)
    _optimiser(plan, steps, 3e-3)
    voxels = math.prod(shape)
    _validation(plan, steps, step, step * max(fp.num_val, 1) * voxels / (2 * math.prod(patch)) / 3)


def anisotropic_patch(spacing: list[float], shape: list[int], voxels: int, multiple: int = 8) -> list[int]:
    """A ``(D, H, W)`` patch of equal physical extent on each axis (sides inversely proportional to the spacing),
    holding about ``voxels`` voxels, no side beyond the volume's ``shape`` (rounded up to ``multiple``): the
    spare voxels go to the other axes. Sides are multiples of ``multiple``.

    Example:
        >>> anisotropic_patch([5.0, 1.0, 1.0], [20, 256, 256], 48**3)  # thick slices: few of them
        [16, 80, 80]
    """
    limits = [max(multiple, -(-side // multiple) * multiple) for side in shape]
    sides = [1 / s for s in spacing]
    free = [True, True, True]
    for _ in range(3):  # grow the axes that are not at their limit
        fixed = math.prod(lim for lim, f in zip(limits, free) if not f)
        scale = (voxels / fixed / math.prod(s for s, f in zip(sides, free) if f)) ** (1 / max(sum(free), 1))
        grown = [min(lim, s * scale) if f else lim for s, lim, f in zip(sides, limits, free)]
        clipped = [f and g >= lim for g, lim, f in zip(grown, limits, free)]
        if not any(clipped):
            break
        free = [f and not c for f, c in zip(free, clipped)]
        if not any(free):
            break
    return [int(max(multiple, min(lim, round(g / multiple) * multiple))) for g, lim in zip(grown, limits)]


def _plan_objects(plan: Plan, source: DataSource, measure: bool, model: Candidate | None, precision: str) -> None:
    """Instance and panoptic runs: a light Mask R-CNN on CPUs (the demos' detector), the paper's widths on GPUs,
    anchors from the object sizes, proposals from the objects per image; a ``model`` asked for keeps its own
    options (the plan then sets the data, schedule and stop rule around it)."""
    fp = plan.fingerprint
    require_instances(source, plan.data, plan.task)
    cpu = plan.device == "cpu"
    short = min(fp.size_median)
    img_size = min(short, 512 if cpu else 800)
    sizes = fp.object_size or [16.0, 32.0, 64.0]  # images with no object at all: the detector's small preset
    smallest = 2 ** max(3, int(math.log2(max(sizes[0], 1))))
    levels = 3 if cpu else 4
    anchors = [smallest * 2**i for i in range(levels + 1)]
    per_image = fp.objects_per_image or 1
    proposals = int(min(2000, max(100, 25 * per_image)))
    kwargs = {"anchor_sizes": anchors, "fpn_levels": levels, "rpn_pre_nms_top_n_train": 3 * proposals,
              "rpn_post_nms_top_n_train": proposals, "rpn_pre_nms_top_n_test": 3 * proposals,
              "rpn_post_nms_top_n_test": proposals, "detections_per_image": int(min(100, max(20, 4 * per_image))),
              "box_batch_size_per_image": 32 if cpu else 512, "roi_sampling_ratio": 0}
    if cpu:
        kwargs.update({"fpn_channels": 64, "box_head_size": 256, "mask_head_channels": 64, "mask_head_layers": 2})
    if plan.task == "panoptic":
        kwargs.update({"semantic_channels": 32 if cpu else 128})
    name = "panoptic_fpn" if plan.task == "panoptic" else "maskrcnn"
    candidate = Candidate(name, {**kwargs, "encoder": "resnet18"}, "detector")
    if model is None:
        plan.set("model.name", name, f"{'Panoptic FPN' if plan.task == 'panoptic' else 'Mask R-CNN'} on a ResNet-18 FPN")
        plan.set("model.encoder", "resnet18", "a light backbone (a ResNet-50 step costs several times as much)")
        plan.set("model.kwargs", kwargs, f"anchors from {anchors[0]} px (the 10th percentile object is {sizes[0]:.0f} px "
                 f"across), {proposals} proposals for {per_image} objects an image"
                 + (", narrow heads and 3 FPN levels for a CPU (the demos' light detector)" if cpu else ""))
    else:
        candidate = model
    plan.set("data.img_size", img_size, f"the detector's shorter side: the median image's ({short} px), at most {512 if cpu else 800}")
    plan.set("data.fit_to_crop", True, "detectors resize each image themselves")
    plan.set("data.scale_range", [0.8, 1.25], "mild scale jitter")
    _augmentation(plan, detector=True)
    plan.set("data.batch_size", 4 if cpu else 8, "images a step")
    plan.set("data.eval_batch_size", 4, "validation images a batch")
    _cache(plan, fp.size_median[0] * fp.size_median[1])
    sized = Candidate(candidate.name, {**candidate.kwargs, "min_size": img_size, "max_size": round(img_size * 1333 / 800)})
    measure_step = (lambda precision="32-true": step_seconds(
        sized, channels=3, num_classes=fp.num_classes, shape=(img_size, img_size), batch=4 if cpu else 8,
        device=plan.device, measure=measure, detector=True, precision=precision))
    step = measure_step()
    plan.measured["step_seconds"] = {"detector": round(step, 4)}
    step = _precision(plan, precision, step, measure, measure_step)
    steps = _stop_rule(plan, step)
    _optimiser(plan, steps, 2e-3)
    _validation(plan, steps, step, step * max(fp.num_val, 1) / 4)
