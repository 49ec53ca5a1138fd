"""Promptable models: an image embedded once, then masks for points, boxes and the previous mask (a click costs one
decoder call on the cached embedding)."""

from __future__ import annotations

import time

import numpy as np
import torch
from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from omniseg.server.cache import Embedding
from omniseg.server.encoding import png_base64
from omniseg.server.state import LoadedModel, ServerState, server_state

router = APIRouter(prefix="/api")


class PromptRequest(BaseModel):
    """A prompt on an embedded image: points (x, y pixels) with labels (1 object, 0 background), boxes
    (x0, y0, x1, y1: one object each) and the previous answer's ``logits_id`` as the mask prompt."""

    embedding_id: str
    points: list[tuple[float, float]] = Field(default_factory=list)
    labels: list[int] | None = None
    boxes: list[tuple[float, float, float, float]] = Field(default_factory=list)
    logits_id: str | None = None
    multimask: bool = True


@router.post("/embed")
async def embed(file: UploadFile = File(...), model: str | None = Form(None), state: ServerState = Depends(server_state)) -> dict:
    """Encode an image for a promptable model; later prompts name the returned ``embedding_id``."""
    served = state.model(model, promptable=True)
    if served.task != "promptable":
        raise HTTPException(422, f"{served.name} is a {served.task} model; embed needs a promptable one")
    image = await state.read_upload(file)
    start = time.perf_counter()
    features, original, resized = await state.run(served.predictor.encode, image)
    key = state.cache.add(Embedding(served.name, features, original, resized))
    return {"embedding_id": key, "model": served.name, "width": original[1], "height": original[0],
            "seconds": round(time.perf_counter() - start, 4)}


@router.post("/prompt")
async def prompt(request: PromptRequest, state: ServerState = Depends(server_state)) -> dict:
    """Masks (0/255 PNGs at the image size) with predicted IoUs for points, boxes and a previous mask."""
    entry = state.cache.get(request.embedding_id)
    if entry is None:
        raise HTTPException(404, f"embedding {request.embedding_id!r} is unknown or was evicted; POST /api/embed again")
    previous = None if request.logits_id is None else state.logits.get(request.logits_id, request.embedding_id)
    start = time.perf_counter()
    result = await state.run(_prompt, state.models[entry.model], entry, request, previous)
    best = int(np.nanargmax(result.scores)) if np.isfinite(result.scores).any() else 0
    key = None if result.low_res_logits is None else state.logits.add(request.embedding_id, result.low_res_logits[best][None])
    masks = await run_in_threadpool(lambda: [png_base64(m.astype(np.uint8) * 255) for m in result.masks])
    return {"masks": masks, "scores": [None if not np.isfinite(s) else float(s) for s in result.scores], "best": best,
            "areas": [int(m.sum()) for m in result.masks], "logits_id": key, "seconds": round(time.perf_counter() - start, 4)}


def _prompt(served: LoadedModel, entry: Embedding, request: PromptRequest, previous: np.ndarray | None):
    predictor = served.predictor
    boxes = request.boxes or None
    batched = boxes is not None and len(boxes) > 1
    points = request.points or None
    with served.lock, torch.inference_mode():
        predictor.use_embedding(entry.features, entry.original_size, entry.input_size)
        result = predictor.predict(
            points=None if points is None else ([points] * len(boxes) if batched else points),
            labels=None if points is None or request.labels is None else ([request.labels] * len(boxes) if batched else request.labels),
            boxes=None if boxes is None else (boxes if batched else boxes[0]), mask_input=None if batched else previous,
            multimask=request.multimask and not batched)
    if batched:  # one mask per box
        from omniseg.inference.promptable.prompt_predictor import PromptResult

        return PromptResult(result.masks[:, 0], result.scores[:, 0], result.low_res_logits[:, 0] if result.low_res_logits is not None else None)
    return result
