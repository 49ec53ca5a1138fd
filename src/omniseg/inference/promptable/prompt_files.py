"""Prompting and labelling files: ``omniseg prompt`` (masks for clicks and boxes on one image) and ``omniseg
autolabel`` (every object of many images, or the boxes of a detector's run, written as COCO instances)."""

from __future__ import annotations

import inspect
import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from omniseg.core.atomic import write_text
from omniseg.errors import ConfigError
from omniseg.inference.prediction.inputs import collect_images
from omniseg.data.imageio import rgb_uint8
from omniseg.inference.promptable.prompt_predictor import PromptPredictor, load_prompt_model
from omniseg.inference.writers import save_image
from omniseg.viz.overlay import prompt_overlay


def prompt_image(model, image: str | Path, out: str | Path, *, points: Sequence[Sequence[float]] | None = None,
                 labels: Sequence[int] | None = None, boxes: Sequence[Sequence[float]] | None = None, multimask: bool = True,
                 arch: str | None = None, engine: str | None = None, device: str | None = None) -> dict:
    """Masks for the prompts on ``image``, written to ``out``: ``mask.png`` (the best mask, 0/255; with several
    boxes, ``mask_<k>.png`` per box), ``masks/<k>.png`` (every proposal), ``overlay.png`` (the best mask with the
    prompts drawn) and ``prompt.json`` (prompts, IoU predictions, files). ``model`` as :func:`load_prompt_model`
    takes it (with ``arch``), or None with ``engine``. Points are one prompt together; several boxes are a
    batch (one object each; the points, when given, go with every box). Returns the JSON record."""
    predictor = load_prompt_model(model, arch=arch, engine=engine, device=device)
    array = rgb_uint8(image)
    predictor.set_image(array)
    point_array = None if points is None else np.asarray(points, dtype=np.float64).reshape(-1, 2)
    box_array = None if boxes is None else np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    batched = box_array is not None and len(box_array) > 1
    result = predictor.predict(
        points=None if point_array is None else (point_array[None].repeat(len(box_array), 0) if batched else point_array),
        labels=None if labels is None else (np.asarray(labels)[None].repeat(len(box_array), 0) if batched else labels),
        boxes=box_array if batched else (None if box_array is None else box_array[0]), multimask=multimask)
    masks = result.masks if batched else result.masks[None]
    scores = result.scores if batched else result.scores[None]
    out = Path(out)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    objects, best_union = [], np.zeros(array.shape[:2], bool)
    for b, (proposals, proposal_scores) in enumerate(zip(masks, scores)):
        best = int(np.nanargmax(proposal_scores)) if np.isfinite(proposal_scores).any() else 0
        name = "mask.png" if not batched else f"mask_{b}.png"
        save_image(out / name, proposals[best].astype(np.uint8) * 255)
        files = []
        for k, proposal in enumerate(proposals):
            path = out / "masks" / (f"{k}.png" if not batched else f"{b}_{k}.png")
            save_image(path, proposal.astype(np.uint8) * 255)
            files.append(str(path.relative_to(out)))
        best_union |= proposals[best]
        objects.append({"mask": name, "best": best, "iou_predictions": [None if not np.isfinite(s) else float(s) for s in proposal_scores],
                        "proposals": files, "area": int(proposals[best].sum())})
    save_image(out / "overlay.png", prompt_overlay(array, best_union, points=point_array,
                                                   labels=None if point_array is None else (np.ones(len(point_array)) if labels is None else labels),
                                                   boxes=box_array))
    record = {"image": str(image), "size": list(array.shape[:2]),
              "model": str(model) if engine is None else None, "engine": engine, "arch": arch,
              "points": None if point_array is None else point_array.tolist(),
              "labels": None if point_array is None else (np.ones(len(point_array), int) if labels is None else np.asarray(labels)).tolist(),
              "boxes": None if box_array is None else box_array.tolist(), "multimask": multimask, "objects": objects,
              "overlay": "overlay.png"}
    write_text(out / "prompt.json", json.dumps(record, indent=2))
    return record


def autolabel_images(model, inputs: Sequence[str | Path], out: str | Path, *, arch: str | None = None,
                     boxes_from: str | Path | None = None, score_threshold: float = 0.5, device: str | None = None,
                     progress: Callable[[int, int], None] | None = None, tile: int | None = None, overlap: float = 0.5,
                     **generator_options) -> dict:
    """Label ``inputs`` (files, folders, globs) as COCO instances in ``out`` (``images/`` holds copies,
    ``annotations/instances.json`` the RLE masks), which ``omniseg train --task instance --data OUT`` reads.

    Without ``boxes_from``, Segment Anything's automatic generator finds every object (one class, "object";
    ``generator_options`` go to :class:`AutomaticMaskGenerator`). With ``boxes_from`` (an instance or panoptic
    run), its detections scoring at least ``score_threshold`` are the prompts ("detect, then segment"): each
    box becomes SAM's mask, with the detector's class and score. With ``tile``, the automatic generator runs on
    tiles of that side (``overlap`` of a tile) and their masks are merged at the seams
    (:meth:`AutomaticMaskGenerator.generate_tiled`). Returns counts per image."""
    from omniseg.inference.promptable.automatic_masks import AutomaticMaskGenerator
    from omniseg.inference.prediction.predictor import Predictor

    defaults = {name: p.default for name, p in inspect.signature(AutomaticMaskGenerator).parameters.items()}
    own = {name: p.default for name, p in inspect.signature(autolabel_images).parameters.items()}
    unused = [name for name, value in generator_options.items() if boxes_from is not None and value != defaults.get(name)]
    unused += ["overlap"] if tile is None and overlap != own["overlap"] else []
    unused += ["score_threshold"] if boxes_from is None and score_threshold != own["score_threshold"] else []
    if unused:
        raise ConfigError(f"{', '.join(unused)} cannot be honoured here: the automatic generator's options need no "
                          "--boxes-from, --score-threshold needs --boxes-from, --overlap needs --tile; leave them out")
    predictor = load_prompt_model(model, arch=arch, device=device)
    if not isinstance(predictor, PromptPredictor):
        raise ConfigError("autolabel needs a Segment Anything model (a run or a checkpoint with --arch)")
    paths = collect_images(inputs)
    detector = Predictor(boxes_from, device=device) if boxes_from is not None else None
    if detector is not None and tile is not None:
        raise ConfigError("--tile runs the automatic generator on tiles; with --boxes-from, SAM segments the detector's boxes "
                          "on the whole image: leave out one of them")
    if detector is not None and detector.card.task not in ("instance", "panoptic"):
        raise ConfigError(f"--boxes-from {boxes_from} is a {detector.card.task} run; give an instance or panoptic run")
    names = detector.info.class_names if detector is not None else ["background", "object"]
    categories = [{"id": i, "name": n} for i, n in enumerate(names) if i > 0]
    generator = AutomaticMaskGenerator(predictor, **generator_options) if detector is None else None
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    images, annotations, counts = [], [], {}
    for image_id, path in enumerate(paths, start=1):
        array = rgb_uint8(path)
        name = f"{image_id:06d}_{path.name}"
        shutil.copyfile(path, out / "images" / name)
        images.append({"id": image_id, "file_name": name, "height": int(array.shape[0]), "width": int(array.shape[1])})
        if generator is None:
            found = segment_detections(predictor, detector, array, score_threshold)
        else:
            found = generator.generate(array) if tile is None else generator.generate_tiled(array, tile=tile, overlap=overlap)
        found = [record for record in found if record["area"] > 0]
        for record in found:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": record.get("category_id", 1),
                                "segmentation": record["segmentation"], "area": record["area"], "bbox": record["bbox"],
                                "iscrowd": 0, "score": record.get("score", record.get("predicted_iou"))})
        counts[str(path)] = len(found)
        if progress is not None:
            progress(image_id, len(paths))
    (out / "annotations").mkdir(exist_ok=True)
    coco = {"images": images, "annotations": annotations, "categories": categories}
    write_text(out / "annotations" / "instances.json", json.dumps(coco))
    return {"out": str(out), "images": len(images), "objects": len(annotations), "per_image": counts,
            "classes": [c["name"] for c in categories]}


def segment_detections(predictor: PromptPredictor, detector, image: np.ndarray, score_threshold: float) -> list[dict]:
    """Detect, then segment: the detector's boxes (score >= ``score_threshold``) prompt SAM in one batch; each
    record holds the COCO RLE, area, bbox (x, y, w, h), the detector's ``category_id`` and ``score``."""
    from omniseg.core.rle import coco_bbox, encode_rle

    found = detector.predict_instances(image, score_threshold=score_threshold)
    if not len(found["boxes"]):
        return []
    predictor.set_image(image)
    height, width = image.shape[:2]
    boxes = np.clip(np.asarray(found["boxes"], np.float64), 0, [width, height, width, height])
    usable = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    if not usable.any():
        return []
    masks = predictor.predict(boxes=boxes[usable], multimask=False).masks[:, 0]  # a [B, 4] batch: one call
    records = []
    for mask, label, score in zip(masks, np.asarray(found["labels"])[usable], np.asarray(found["scores"])[usable]):
        records.append({"segmentation": encode_rle(mask), "area": int(mask.sum()), "bbox": coco_bbox(mask),
                        "category_id": int(label), "score": float(score)})
    return records
