"""Videos opened on the page: each stored in its own folder with its tracking output, tracked in a background thread
(the page polls the progress), its frames and masks served one at a time, its tracks corrected in place."""

from __future__ import annotations

import shutil
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import HTTPException


@dataclass
class VideoSession:
    """One uploaded video: ``folder/video<suffix>`` and its tracking output ``folder/tracked/``."""

    key: str
    folder: Path
    video: Path
    model: str
    status: str = "tracking"  # then "done" or "failed"
    done: int = 0
    total: int = 0
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)  # one edit at a time

    @property
    def out(self) -> Path:
        return self.folder / "tracked"

    def describe(self) -> dict:
        return {"id": self.key, "model": self.model, "status": self.status, "done": self.done, "total": self.total, "error": self.error}


class VideoSessions:
    """The open videos, at most ``limit`` (the oldest closed and its folder removed past it)."""

    def __init__(self, limit: int = 8) -> None:
        self.limit, self._sessions = limit, {}
        self.root = Path(tempfile.mkdtemp(prefix="omniseg-videos-"))
        self._lock = threading.Lock()

    def open(self, data: bytes, filename: str, model: str) -> VideoSession:
        key = uuid.uuid4().hex
        folder = self.root / key
        folder.mkdir()
        suffix = Path(filename).suffix.lower() or ".mp4"
        video = folder / f"video{suffix}"
        video.write_bytes(data)
        session = VideoSession(key, folder, video, model)
        with self._lock:
            self._sessions[key] = session
            while len(self._sessions) > self.limit:
                _, oldest = next(iter(self._sessions.items()))
                del self._sessions[oldest.key]
                shutil.rmtree(oldest.folder, ignore_errors=True)  # made by open() below our own temporary root
        return session

    def get(self, key: str) -> VideoSession:
        session = self._sessions.get(key)
        if session is None:
            raise HTTPException(404, f"video {key!r} is unknown or was closed; open it again")
        return session

    def ready(self, key: str) -> VideoSession:
        session = self.get(key)
        if session.status != "done":
            raise HTTPException(409, f"video {key} is {session.status}" + (f": {session.error}" if session.error else "; wait for it"))
        return session

    def close_all(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)  # the temporary folder made by mkdtemp at start: only ours in it
