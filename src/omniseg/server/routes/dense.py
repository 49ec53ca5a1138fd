"""Semantic, instance and panoptic prediction of an uploaded image."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile

from omniseg.core.rle import encode_rle
from omniseg.server.encoding import plain, png_base64
from omniseg.server.state import LoadedModel, ServerState, server_state

router = APIRouter(prefix="/api")


@router.post("/predict")
async def predict(file: UploadFile = File(...), model: str | None = Form(None),
                  score_threshold: float | None = Form(None, ge=0, le=1), state: ServerState = Depends(server_state)) -> dict:
    """Semantic: the class-id PNG (palette) and the classes present; instance: instances with COCO RLE masks (those
    scoring under ``score_threshold``, default 0.5, left out); panoptic: the COCO panoptic PNG and its segments
    (``score_threshold`` overrides the model's own)."""
    served = state.model(model, promptable=False)
    if served.task == "promptable":
        raise HTTPException(422, f"{served.name} is promptable: POST /api/embed, then /api/prompt")
    image = await state.read_upload(file)
    start = time.perf_counter()
    answer = await state.run(ANSWERS[served.task], served, image, score_threshold)
    return {"model": served.name, "task": served.task, "width": int(image.shape[1]), "height": int(image.shape[0]),
            "seconds": round(time.perf_counter() - start, 4), **answer}


def _semantic(served: LoadedModel, image: np.ndarray, score_threshold: float | None) -> dict[str, Any]:
    with served.lock, torch.inference_mode():
        mask = served.predictor.predict(image)
    return {"mask_png": png_base64(mask.astype(np.uint8), served.palette), "classes": list(served.classes),
            "present": sorted(int(v) for v in np.unique(mask))}


def _instance(served: LoadedModel, image: np.ndarray, score_threshold: float | None) -> dict[str, Any]:
    options = {} if score_threshold is None else {"score_threshold": score_threshold}
    with served.lock, torch.inference_mode():
        found = served.predictor.predict_instances(image, **options)
    ids = np.zeros(image.shape[:2], np.uint8)  # instance k + 1 (the first 255), better ones on top
    for k in range(min(len(found["masks"]), 255) - 1, -1, -1):
        ids[found["masks"][k]] = k + 1
    return {"instances": [{"label": int(label), "class": served.classes[int(label)], "score": float(score),
                           "box": [float(v) for v in box], "rle": encode_rle(mask)}
                          for mask, label, score, box in zip(found["masks"], found["labels"], found["scores"], found["boxes"])],
            "instances_png": png_base64(ids)}


def _panoptic(served: LoadedModel, image: np.ndarray, score_threshold: float | None) -> dict[str, Any]:
    from omniseg.models.panoptic.merge import ids_to_rgb

    options = {} if score_threshold is None else {"score_threshold": score_threshold}
    with served.lock, torch.inference_mode():
        ids, segments = served.predictor.predict_panoptic(image, **options)
    return {"panoptic_png": png_base64(ids_to_rgb(ids)), "segments": plain(segments)}


ANSWERS = {"semantic": _semantic, "instance": _instance, "panoptic": _panoptic}
