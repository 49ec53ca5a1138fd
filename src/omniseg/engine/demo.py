"""The demos: synthetic shape scenes, a small model trained for a fixed number of optimiser steps, evaluated.

``semantic`` trains a small U-Net, ``instance`` a light Mask R-CNN, ``panoptic`` a light Panoptic FPN,
``promptable`` a light Segment Anything (SAM's prompt encoder and mask decoder on a ResNet-18 stem) and ``video``
the light Mask R-CNN on the frames of synthetic videos, whose validation videos it then tracks and is measured on. Each
stops after a step count that reaches its target on any machine (quality never depends on the machine's
speed); a time budget is only an optional cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omniseg.config import DataConfig, ModelConfig, OptimConfig, PromptConfig, RunConfig, TrainConfig
from omniseg.data.synthetic import write_synthetic
from omniseg.engine.trainer import TrainResult, train
from omniseg.errors import ConfigError


@dataclass(frozen=True)
class DemoSetup:
    """What a demo trains on and for how long: ``steps`` optimiser steps, validated ``validations`` times
    (evenly spaced, the last at the last step)."""

    out: str
    steps: int
    validations: int
    train_scenes: int = 800
    val_scenes: int = 100
    size: int = 64


DEMOS = {
    "semantic": DemoSetup("runs/demo", steps=1700, validations=5),
    "instance": DemoSetup("runs/demo-instance", steps=900, validations=2),
    "panoptic": DemoSetup("runs/demo-panoptic", steps=800, validations=2),
    "promptable": DemoSetup("runs/demo-promptable", steps=3600, validations=2),
    # videos, not scenes: many short training videos (more kinds of scene than frames of a few), long validation ones;
    # 96 pixels, where 64 left the detector's masks too coarse for HOTA's stricter thresholds (LocA 0.81 against 0.86)
    "video": DemoSetup("runs/demo-video", steps=1500, validations=2, train_scenes=160, val_scenes=8, size=96),
}
VIDEO_FRAMES = {"train": 10, "valid": 40}

# A light Segment Anything for 64-pixel scenes: ResNet-18's first three stages, the third dilated to stride 8
# (2.96M parameters), under SAM's neck, so the 8 x 8 embedding gives masks at half the scene's resolution, with the
# stride-2 and stride-4 stages added to the decoder's upscaling (SAM 2's high-resolution features: at 3,600 steps
# one-click mIoU 0.859 against 0.851 without, NoC@90 6.2 against 11.6, for no measurable cost a step); SAM's
# prompt encoder and two-way mask decoder at half SAM's width (128 channels, 4 heads, 512-wide MLPs: a step costs
# about half the 256-channel decoder's).
LIGHT_SAM = {"encoder": "resnet18", "embedding_stride": 8, "encoder_stage": 3, "high_res_features": True,
             "prompt_embed_dim": 128, "decoder_mlp_dim": 512, "decoder_num_heads": 4, "iou_head_hidden_dim": 128}

# A light Mask R-CNN for 64-pixel scenes with up to four shapes: ResNet-18 without its stride-32 stage under
# a 64-channel FPN, anchors from 8 px, few proposals (in training and inference) and sampled RoIs, narrow
# heads, adaptive RoIAlign sampling (one point per bin on these small objects); a detector of the paper's
# widths takes about 6x as long a step here.
LIGHT_DETECTOR = {
    "anchor_sizes": "small", "fpn_channels": 64, "box_head_size": 256, "mask_head_channels": 64, "mask_head_layers": 2,
    "rpn_pre_nms_top_n_train": 300, "rpn_post_nms_top_n_train": 100, "rpn_pre_nms_top_n_test": 300,
    "rpn_post_nms_top_n_test": 100, "box_batch_size_per_image": 32,
    "roi_sampling_ratio": 0, "detections_per_image": 20, "fpn_levels": 3,
}


def demo_config(task: str, data: str | Path, out: str | Path, *, size: int, steps: int, validations: int = 2,
                time_budget: float | None = None) -> RunConfig:
    """The demo's configuration for ``task``: ``steps`` optimiser steps, ``validations`` evenly spaced
    validations, the last at the last step (``time_budget``, in seconds, an optional cap).

    Semantic: a U-Net of width 16 and 3 poolings behind a stride-2 stem (``stem_stride=2``, no full-resolution
    branch: logits at half resolution, upsampled), CE + Dice, AdamW at 8e-3 with a 250-step warm-up and
    poly decay, flips and quarter turns (shapes have no up), scenes cached in memory: about 0.88 val mIoU at
    1,700 steps, where a step of a 4-level full-resolution U-Net of the same width costs nearly 3 times as
    much. Instance and panoptic: the :data:`LIGHT_DETECTOR` Mask R-CNN, randomly initialised (nothing is downloaded), AdamW at
    2e-3 with warm-up and poly decay (quarter turns made the detector learn slower). The instance demo's
    mask head has 32 channels (a step about a fifth cheaper; mask AP50 0.81 against 0.82 at 1,000 steps);
    the panoptic demo keeps 64, since panoptic quality scores every pixel of a segment (PQ 0.60 against
    0.54), and adds a 32-channel semantic FPN head. The scenes already vary colour, so the demos skip colour jitter.
    Promptable: the :data:`LIGHT_SAM` from scratch, SAM's prompt simulation with one corrective click and no
    refinement pass (a step about 0.1 s here; without the high-resolution features, two clicks and a refinement
    pass cost 60% more a step and reached 0.829 one-click mIoU at 2,400 steps, 0.843 at 3,000 with two clicks
    alone), AdamW at 2e-3 (4e-3 learnt slower) with warm-up and poly decay, flips and quarter turns.
    """
    task = "instance" if task == "video" else task  # the video demo trains the instance demo's detector on video frames
    every = steps // validations if steps % validations == 0 else steps  # the last validation is at the last step
    train_config = TrainConfig(epochs=None, max_steps=steps, time_budget=time_budget, out=str(out), seed=0, val_every_steps=every)
    if task == "semantic":
        return RunConfig(
            data=DataConfig(path=str(data), img_size=size, scale_range=(1.0, 1.0), batch_size=8, eval_batch_size=50,
                            color_jitter=0.0, vflip=True, rot90=True, cache=True),
            model=ModelConfig(name="unet", kwargs={"depth": 3, "base_channels": 16, "upsampling": "bilinear", "stem_stride": 2, "full_channels": 0}),
            optim=OptimConfig(lr=8e-3, weight_decay=1e-4, schedule="poly", warmup_steps=250),
            train=train_config,
        )
    if task == "promptable":
        return RunConfig(
            task=task,
            data=DataConfig(path=str(data), img_size=size, scale_range=(1.0, 1.0), batch_size=8, eval_batch_size=20,
                            color_jitter=0.0, vflip=True, rot90=True, cache=True),
            model=ModelConfig(name="sam_timm", kwargs=dict(LIGHT_SAM)),
            optim=OptimConfig(lr=2e-3, weight_decay=1e-4, schedule="poly", warmup_steps=100),
            prompt=PromptConfig(corrective_clicks=1, refine_iterations=0),
            train=train_config,
        )
    model = ModelConfig(name="maskrcnn", encoder="resnet18", kwargs={**LIGHT_DETECTOR, "mask_head_channels": 32})
    if task == "panoptic":
        model = ModelConfig(name="panoptic_fpn", encoder="resnet18", kwargs={**LIGHT_DETECTOR, "semantic_channels": 32, "stuff_min_area": 16})
    return RunConfig(
        task=task,
        data=DataConfig(path=str(data), img_size=size, scale_range=(0.8, 1.25), batch_size=8, eval_batch_size=20, color_jitter=0.0,
                        cache=True),
        model=model,
        optim=OptimConfig(lr=2e-3, weight_decay=1e-4, schedule="poly", warmup_steps=100),
        train=train_config,
    )


def run_demo(task: str = "semantic", *, out: str | Path | None = None, data_dir: str | Path | None = None,
             train_scenes: int | None = None, val_scenes: int | None = None, size: int | None = None,
             steps: int | None = None, time_budget: float | None = None, progress: bool = True) -> TrainResult | None:
    """Write the synthetic scenes (into ``data_dir``, default ``<out>_data``; kept when a previous demo wrote
    the same ones), train the demo model of ``task`` for its step count and evaluate it. Returns the training
    result (the run directory is ``out``, default ``runs/demo``, ``runs/demo-instance`` or ``runs/demo-panoptic``).

    Example:
        >>> result = run_demo("semantic")  # doctest: +SKIP
        >>> result.metrics["miou"] > 0.85  # doctest: +SKIP
        True
    """
    if task not in DEMOS:
        raise ConfigError(f"demo task {task!r} is unknown; use one of {', '.join(DEMOS)}")
    setup = DEMOS[task]
    out = Path(out or setup.out)
    data = Path(data_dir) if data_dir is not None else out.with_name(f"{out.name}_data")
    splits = {"train": train_scenes or setup.train_scenes, "val": val_scenes or setup.val_scenes}
    size = size or setup.size
    if task == "video":
        return run_video_demo(out, data, splits, size=size, steps=steps or setup.steps, validations=setup.validations,
                              time_budget=time_budget, progress=progress)
    write_synthetic(data, splits=splits, size=size, seed=0)
    config = demo_config(task, data, out, size=size, steps=steps or setup.steps, validations=setup.validations, time_budget=time_budget)
    return train(config, overwrite=True, progress=progress)


def run_video_demo(out: Path, data: Path, splits: dict[str, int], *, size: int, steps: int, validations: int,
                   time_budget: float | None = None, progress: bool = True) -> TrainResult:
    """The video demo: the synthetic tracking videos (YouTube-VIS layout), the light Mask R-CNN trained on their
    frames as the instance demo trains, then every validation video tracked (``<out>/tracks_val/<video>/``: label
    PNGs, tracks.json, overlay.mp4, contact_sheet.png) and measured (HOTA, MOTSA, IDF1, J&F), the figures added to
    the run's ``metrics.json`` under ``video`` and written to ``video_metrics.json``."""
    import json

    from rich.progress import Progress

    from omniseg.core.atomic import write_text
    from omniseg.data.synthetic_video import write_tracking_videos
    from omniseg.inference.evaluate.video import evaluate_video

    write_tracking_videos(data, splits={"train": splits["train"], "valid": splits["val"]}, frames=VIDEO_FRAMES, size=size, seed=0)
    config = demo_config("video", data, out, size=size, steps=steps, validations=validations, time_budget=time_budget)
    result = train(config, overwrite=True, progress=progress)
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("tracking the validation videos", total=None)
        report = evaluate_video(out, data, split="val", progress=lambda done, total: bar.update(task, completed=done, total=total))
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["video"] = {k: v for k, v in report.items() if k not in ("hota_curves", "videos")}
    write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    result.metrics["video"] = metrics["video"]
    return result
