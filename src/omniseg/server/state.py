"""What the routes share, held in one explicit object: the served models, the embedding and logits caches, the
inference slots and the settings. ``create_app`` builds it; each route gets it from the request."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from fastapi import HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool

from omniseg.errors import ConfigError
from omniseg.server.cache import EmbeddingCache
from omniseg.server.settings import ServerSettings
from omniseg.server.videos import VideoSessions
from omniseg.server.uploads import decode_upload


class LoadedModel:
    """A served model: a :class:`~omniseg.inference.Predictor` (semantic, instance, panoptic), a
    :class:`~omniseg.inference.PromptPredictor` (promptable) or a weight-free prompt engine, with a lock for the
    predictor's state."""

    def __init__(self, name: str, source: str | Path | None, *, arch: str | None = None, device: str | None = None,
                 engine: str | None = None, precision: str = "32", backend: str = "torch",
                 exported: str | Path | None = None) -> None:
        from omniseg.inference.promptable.export_sam import is_promptable_run
        from omniseg.inference.prediction.predictor import Predictor
        from omniseg.inference.promptable.prompt_predictor import load_prompt_model

        self.name, self.engine, self.lock = name, engine, threading.Lock()
        if engine is not None or Path(source).is_file() or is_promptable_run(source):
            if backend != "torch":
                raise ConfigError(f"{source}: the {backend} backend runs semantic runs; serve promptable models with torch")
            self.predictor = load_prompt_model(source, arch=arch, device=device, engine=engine, precision=precision)
            self.task, self.classes, self.palette = "promptable", ["background", "object"], [[0, 0, 0], [30, 144, 255]]
        else:
            self.predictor = Predictor(source, device=device, precision=precision, backend=backend, exported=exported)
            self.task, self.classes, self.palette = self.predictor.card.task, self.predictor.info.class_names, self.predictor.info.palette

    def describe(self) -> dict:
        return {"name": self.name, "task": self.task, "engine": self.engine, "classes": list(self.classes),
                "palette": [list(c) for c in self.palette]}


class LogitsStore:
    """The last masks' low-resolution logits by id, each tied to its embedding, the oldest dropped past ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit, self._entries = limit, OrderedDict()
        self._lock = threading.Lock()

    def add(self, embedding_id: str, logits: np.ndarray) -> str:
        key = uuid.uuid4().hex
        with self._lock:
            self._entries[key] = (embedding_id, logits)
            while len(self._entries) > self.limit:
                self._entries.popitem(last=False)
        return key

    def get(self, key: str, embedding_id: str) -> np.ndarray:
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry[0] != embedding_id:
            raise HTTPException(404, f"logits {key!r} are unknown for this embedding; send the prompt without them")
        return entry[1]


class ServerState:
    """The served ``models`` and what the routes share."""

    def __init__(self, models: Mapping[str, LoadedModel], settings: ServerSettings) -> None:
        self.models, self.settings = dict(models), settings
        self.cache = EmbeddingCache(settings.cache_bytes)
        self.logits = LogitsStore(settings.kept_logits)
        self.slots = asyncio.Semaphore(settings.workers)
        self.videos = VideoSessions()

    def model(self, name: str | None, *, promptable: bool) -> LoadedModel:
        """The model ``name``; without one, the only loaded model of the kind asked for (a learned promptable model
        before the weight-free engines)."""
        if name is not None:
            if name not in self.models:
                raise HTTPException(404, f"no model {name!r} is loaded; loaded: {', '.join(self.models) or 'none'}")
            return self.models[name]
        matching = [m for m in self.models.values() if (m.task == "promptable") == promptable]
        learned = [m for m in matching if m.engine is None]
        choices = learned or matching
        if len(choices) != 1:
            raise HTTPException(422, f"name the model: one of {', '.join(m.name for m in matching) or 'none loaded'}")
        return choices[0]

    async def run(self, function, *args):
        """``function(*args)`` in a worker thread, at most ``settings.workers`` at once (a burst queues here)."""
        async with self.slots:
            return await run_in_threadpool(function, *args)

    async def read_upload(self, file: UploadFile) -> np.ndarray:
        data = await file.read(self.settings.max_upload_bytes + 1)  # decoded in a thread: health answers meanwhile
        return await run_in_threadpool(decode_upload, data, file.filename or "the upload", self.settings)


def server_state(request: Request) -> ServerState:
    """The dependency every route takes: the application's :class:`ServerState`."""
    return request.app.state.omniseg
