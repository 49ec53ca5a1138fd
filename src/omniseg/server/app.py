"""The FastAPI application: health, models, semantic/instance/panoptic prediction, promptable embedding and
prompting (a click costs one decoder call on a cached embedding), and the classical methods."""

from __future__ import annotations

import asyncio
import base64
import io
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from pydantic import BaseModel, Field

from omniseg.core.rle import encode_rle
from omniseg.errors import OmnisegError
from omniseg.server.cache import Embedding, EmbeddingCache
from omniseg.server.settings import ServerSettings
from omniseg.server.uploads import UploadError, decode_upload


def png_base64(array: np.ndarray, palette: Sequence[Sequence[int]] | None = None) -> str:
    """An array as a base64 PNG: uint8 (with ``palette``: a palette PNG), uint16, or RGB."""
    image = Image.fromarray(array)
    if palette is not None:
        image.putpalette([v for colour in palette for v in colour][:768])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


class LoadedModel:
    """A served model: a :class:`~omniseg.inference.Predictor` (semantic, instance, panoptic) or a
    :class:`~omniseg.inference.PromptPredictor` (promptable), with a lock for the predictor's state."""

    def __init__(self, name: str, source: str | Path, *, arch: str | None = None, device: str | None = None) -> None:
        from omniseg.inference.export_sam import is_promptable_run
        from omniseg.inference.predictor import Predictor
        from omniseg.inference.prompt_predictor import load_prompt_model

        self.name, self.lock = name, threading.Lock()
        if Path(source).is_file() or is_promptable_run(source):
            self.predictor = load_prompt_model(source, arch=arch, device=device)
            self.task, self.classes, self.palette = "promptable", ["background", "object"], [[0, 0, 0], [30, 144, 255]]
        else:
            self.predictor = Predictor(source, device=device)
            self.task, self.classes, self.palette = self.predictor.card.task, self.predictor.info.class_names, self.predictor.info.palette

    def describe(self) -> dict:
        return {"name": self.name, "task": self.task, "classes": list(self.classes), "palette": [list(c) for c in self.palette]}


class PromptRequest(BaseModel):
    """A prompt on an embedded image: points (x, y pixels) with labels (1 object, 0 background), boxes
    (x0, y0, x1, y1: one object each) and the previous answer's ``logits_id`` as the mask prompt."""

    embedding_id: str
    points: list[tuple[float, float]] = Field(default_factory=list)
    labels: list[int] | None = None
    boxes: list[tuple[float, float, float, float]] = Field(default_factory=list)
    logits_id: str | None = None
    multimask: bool = True


def create_app(models: Sequence[str | Path] | dict[str, str | Path] = (), settings: ServerSettings | None = None, *,
               device: str | None = None, arch: str | None = None) -> FastAPI:
    """The application serving ``models``: run directories, or promptable checkpoint files of architecture
    ``arch`` (not needed for the official file names). A dict names them, else the folder or file stem does."""
    settings = settings or ServerSettings()
    named = dict(models) if isinstance(models, dict) else {Path(m).stem if Path(m).is_file() else Path(m).name: m for m in models}
    loaded = {name: LoadedModel(name, source, arch=arch if Path(source).is_file() else None, device=device)
              for name, source in named.items()}
    cache = EmbeddingCache(settings.cache_bytes)
    logits: OrderedDict[str, tuple[str, np.ndarray]] = OrderedDict()
    slots = asyncio.Semaphore(settings.workers)
    app = FastAPI(title="omniseg", summary="Segmentation models and classical methods over HTTP", version="1")
    app.state.settings, app.state.models, app.state.cache = settings, loaded, cache

    @app.exception_handler(UploadError)
    async def _upload_error(request, exc: UploadError):
        return JSONResponse(status_code=exc.status, content={"detail": exc.message})

    @app.exception_handler(OmnisegError)
    async def _omniseg_error(request, exc: OmnisegError):
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    async def run(function, *args):
        async with slots:  # a burst queues here instead of running every model at once
            return await run_in_threadpool(function, *args)

    def model_of(name: str | None, task: str | None = None) -> LoadedModel:
        if name is None:
            matching = [m for m in loaded.values() if task is None or (m.task == "promptable") == (task == "promptable")]
            if len(matching) != 1:
                raise HTTPException(422, f"name the model: one of {', '.join(m.name for m in matching) or 'none loaded'}")
            return matching[0]
        if name not in loaded:
            raise HTTPException(404, f"no model {name!r} is loaded; loaded: {', '.join(loaded) or 'none'}")
        return loaded[name]

    async def read_upload(file: UploadFile) -> np.ndarray:
        data = await file.read(settings.max_upload_bytes + 1)  # decoded in a thread: health answers meanwhile
        return await run_in_threadpool(decode_upload, data, file.filename or "the upload", settings)

    static = Path(__file__).parent / "static"
    app.mount("/static", StaticFiles(directory=static), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(static / "index.html")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/api/health")
    async def health() -> dict:  # on the event loop: it answers while the inference slots are busy
        return {"status": "ok", "models": len(loaded), "cached_embeddings": len(cache)}

    @app.get("/api/models")
    async def list_models() -> list[dict]:
        return [m.describe() for m in loaded.values()]

    @app.post("/api/predict")
    async def predict(file: UploadFile = File(...), model: str | None = Form(None),
                      score_threshold: float | None = Form(None, ge=0, le=1)) -> dict:
        """Semantic: the class-id PNG (palette) and the classes present; instance: instances with COCO RLE
        masks (those scoring under ``score_threshold``, default 0.5, left out); panoptic: the COCO panoptic PNG
        and its segments (``score_threshold`` overrides the model's own)."""
        served = model_of(model, "dense")
        if served.task == "promptable":
            raise HTTPException(422, f"{served.name} is promptable: POST /api/embed, then /api/prompt")
        image = await read_upload(file)
        start = time.perf_counter()
        answer = await run(_predict, served, image, score_threshold)
        return {"model": served.name, "task": served.task, "width": int(image.shape[1]), "height": int(image.shape[0]),
                "seconds": round(time.perf_counter() - start, 4), **answer}

    @app.post("/api/embed")
    async def embed(file: UploadFile = File(...), model: str | None = Form(None)) -> dict:
        """Encode an image for a promptable model; later prompts name the returned ``embedding_id``."""
        served = model_of(model, "promptable")
        if served.task != "promptable":
            raise HTTPException(422, f"{served.name} is a {served.task} model; embed needs a promptable one")
        image = await read_upload(file)
        start = time.perf_counter()
        features, original, resized = await run(served.predictor.encode, image)
        key = cache.add(Embedding(served.name, features, original, resized))
        return {"embedding_id": key, "model": served.name, "width": original[1], "height": original[0],
                "seconds": round(time.perf_counter() - start, 4)}

    @app.post("/api/prompt")
    async def prompt(request: PromptRequest) -> dict:
        """Masks (0/255 PNGs at the image size) with predicted IoUs for points, boxes and a previous mask."""
        entry = cache.get(request.embedding_id)
        if entry is None:
            raise HTTPException(404, f"embedding {request.embedding_id!r} is unknown or was evicted; POST /api/embed again")
        served = loaded[entry.model]
        previous = None
        if request.logits_id is not None:
            if request.logits_id not in logits or logits[request.logits_id][0] != request.embedding_id:
                raise HTTPException(404, f"logits {request.logits_id!r} are unknown for this embedding; send the prompt without them")
            previous = logits[request.logits_id][1]
        start = time.perf_counter()
        result = await run(_prompt, served, entry, request, previous)
        best = int(np.nanargmax(result.scores)) if np.isfinite(result.scores).any() else 0
        key = None
        if result.low_res_logits is not None:
            key = uuid.uuid4().hex
            logits[key] = (request.embedding_id, result.low_res_logits[best][None])
            while len(logits) > 256:
                logits.popitem(last=False)
        masks = await run_in_threadpool(lambda: [png_base64(m.astype(np.uint8) * 255) for m in result.masks])
        return {"masks": masks, "scores": [None if not np.isfinite(s) else float(s) for s in result.scores], "best": best,
                "areas": [int(m.sum()) for m in result.masks], "logits_id": key,
                "seconds": round(time.perf_counter() - start, 4)}

    @app.post("/api/segment")
    async def segment(file: UploadFile = File(...), method: str = Form(...), parameters: str = Form("{}")) -> dict:
        """A classical method (``omniseg segment --list``) with JSON ``parameters``: 16-bit region ids as PNG."""
        import json

        from omniseg.classical.methods import METHODS, resolve_parameters

        if method not in METHODS:
            raise HTTPException(404, f"no classical method {method!r}; choose one of {', '.join(METHODS)}")
        try:
            chosen = resolve_parameters(method, json.loads(parameters))
        except (ValueError, TypeError) as exc:
            raise HTTPException(422, f"parameters: {exc}") from None
        if METHODS[method].marks == "seeds":
            raise HTTPException(422, f"{method} needs seeds; use /api/prompt with a promptable engine")
        image = await read_upload(file)
        start = time.perf_counter()
        labels = await run(_segment, image, method, chosen)
        return {"method": method, "parameters": chosen, "regions": int(labels.max()) + 1,
                "labels_png": png_base64(labels.astype(np.uint16)), "seconds": round(time.perf_counter() - start, 4)}

    @app.post("/api/labels")
    async def labels(file: UploadFile = File(...), objects: str = Form(...)) -> dict:
        """Save the image and its kept objects (JSON ``[{"class": name, "mask_png": base64 0/255 PNG}]``) into the
        labelling folder (``omniseg serve --label-dir``) as COCO instances."""
        import json

        from omniseg.server.labels import save_labels

        if settings.label_dir is None:
            raise HTTPException(409, "no labelling folder: start the server with --label-dir DIR")
        data = await file.read(settings.max_upload_bytes + 1)
        image = decode_upload(data, file.filename or "the upload", settings)
        try:
            kept = [(str(o["class"]).strip(), np.asarray(Image.open(io.BytesIO(base64.b64decode(o["mask_png"])))) > 0)
                    for o in json.loads(objects)]
        except (ValueError, KeyError, TypeError, OSError) as exc:
            raise HTTPException(422, f"objects must be [{{\"class\": name, \"mask_png\": base64 PNG}}]: {exc}") from None
        for name, mask in kept:
            if not name:
                raise HTTPException(422, "every object needs a class name")
            if mask.shape[:2] != image.shape[:2]:
                raise HTTPException(422, f"a mask of {name!r} is {mask.shape[1]} x {mask.shape[0]}, the image {image.shape[1]} x {image.shape[0]}")
        counts = await run(save_labels, settings.label_dir, file.filename or "image.png", data, image.shape[:2],
                           [(n, m if m.ndim == 2 else m[..., 0]) for n, m in kept])
        return {"saved": len(kept), "label_dir": str(settings.label_dir), **counts}

    return app


def _predict(served: LoadedModel, image: np.ndarray, score_threshold: float | None) -> dict[str, Any]:
    predictor = served.predictor
    options = {} if score_threshold is None else {"score_threshold": score_threshold}
    with served.lock, torch.inference_mode():
        if served.task == "semantic":
            mask = predictor.predict(image)
        elif served.task == "instance":
            found = predictor.predict_instances(image, **options)
        else:
            ids, segments = predictor.predict_panoptic(image, **options)
    if served.task == "semantic":  # the PNGs are encoded outside the model's lock
        return {"mask_png": png_base64(mask.astype(np.uint8), served.palette), "classes": list(served.classes),
                    "present": sorted(int(v) for v in np.unique(mask))}
    if served.task == "instance":
        ids = np.zeros(image.shape[:2], np.uint8)  # instance k + 1 (the first 255), better ones on top
        for k in range(min(len(found["masks"]), 255) - 1, -1, -1):
            ids[found["masks"][k]] = k + 1
        return {"instances": [{"label": int(label), "class": served.classes[int(label)], "score": float(score),
                               "box": [float(v) for v in box], "rle": encode_rle(mask)}
                              for mask, label, score, box in zip(found["masks"], found["labels"], found["scores"], found["boxes"])],
                "instances_png": png_base64(ids)}
    from omniseg.models.panoptic.merge import ids_to_rgb

    return {"panoptic_png": png_base64(ids_to_rgb(ids)), "segments": _plain(segments)}


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
        from omniseg.inference.prompt_predictor import PromptResult

        return PromptResult(result.masks[:, 0], result.scores[:, 0], result.low_res_logits[:, 0] if result.low_res_logits is not None else None)
    return result


def _segment(image: np.ndarray, method: str, parameters: dict) -> np.ndarray:
    from omniseg.classical.methods import segment

    try:
        return segment(image, method, parameters)
    except ValueError as exc:
        raise OmnisegError(f"{method}: {exc}") from None


def _plain(value):
    """numpy values inside ``value`` as JSON-ready Python values."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
