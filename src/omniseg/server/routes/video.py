"""Videos on the page: open one (it is tracked by the chosen run in the background), read its frames, masks and
tracks, and correct them: a click selects the track under it, or, when a Segment Anything 2 model is served, adds or
redraws that object through the whole video; two tracks can be joined into one."""

from __future__ import annotations

import json
import threading

import cv2
import numpy as np
from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel

from omniseg.errors import OmnisegError
from omniseg.server.state import LoadedModel, ServerState, server_state
from omniseg.server.videos import VideoSession

router = APIRouter(prefix="/api/videos")


@router.post("")
async def open_video(file: UploadFile = File(...), model: str | None = Form(None), state: ServerState = Depends(server_state)) -> dict:
    """Store the video and start tracking it with ``model`` (an instance or panoptic run; a semantic run tracks its
    regions of thing classes); poll ``GET /api/videos/{id}`` for the progress."""
    served = state.model(model, promptable=False)
    data = await file.read(state.settings.max_video_bytes + 1)
    if len(data) > state.settings.max_video_bytes:
        raise HTTPException(413, f"the video is larger than {state.settings.max_video_bytes} bytes; cut it or raise the limit")
    session = state.videos.open(data, file.filename or "video.mp4", served.name)
    threading.Thread(target=_track, args=(session, served), daemon=True).start()
    return session.describe()


def _track(session: VideoSession, served: LoadedModel) -> None:
    from omniseg.inference.tracking.track_detections import track_objects

    def progress(done: int, total: int) -> None:
        session.done, session.total = done, total

    try:
        track_objects(served.predictor, session.video, session.out, instances=True, progress=progress, contact_frames=4)
        session.status = "done"
    except (OmnisegError, OSError, ValueError, RuntimeError) as exc:
        session.status, session.error = "failed", str(exc)


@router.get("/{key}")
def describe(key: str, state: ServerState = Depends(server_state)) -> dict:
    """The tracking's progress; once done, the video's size, frame rate and tracks (id, class, first and last frame)."""
    session = state.videos.get(key)
    answer = session.describe()
    if session.status == "done":
        summary = json.loads((session.out / "tracks.json").read_text())
        answer |= {"frames": summary["frames"], "fps": summary["fps"], "height": summary["size"][0], "width": summary["size"][1],
                   "objects": {k: {"class": v["class"], "first": min(map(int, v["frames"])), "last": max(map(int, v["frames"])),
                                   "boxes": {f: e["box"] for f, e in v["frames"].items()}}
                               for k, v in summary["objects"].items() if v["frames"]},
                   "sam2": _sam2(state) is not None}
    return answer


@router.get("/{key}/frames/{index}")
def frame(key: str, index: int, state: ServerState = Depends(server_state)) -> Response:
    """Frame ``index`` as a JPEG."""
    from omniseg.data.video import VideoFrames

    session = state.videos.ready(key)
    with VideoFrames(session.video) as frames:
        if not 0 <= index < len(frames):
            raise HTTPException(404, f"frame {index} is outside 0..{len(frames) - 1}")
        pixels = frames[index]
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    return Response(encoded.tobytes(), media_type="image/jpeg")


@router.get("/{key}/masks/{index}")
def mask(key: str, index: int, state: ServerState = Depends(server_state)) -> Response:
    """Frame ``index``'s object ids as an RGB PNG, id = red + 256 x green (any id, read exactly by the page)."""
    from omniseg.data.imageio import read_label_png

    path = state.videos.ready(key).out / "masks" / f"{index:05d}.png"
    if not path.is_file():
        raise HTTPException(404, f"frame {index} has no mask")
    ids = read_label_png(path)[0].astype(np.int64)
    packed = np.stack([ids & 255, (ids >> 8) & 255, np.zeros_like(ids)], -1).astype(np.uint8)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(packed, cv2.COLOR_RGB2BGR))
    return Response(encoded.tobytes(), media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/{key}/tracks")
def tracks(key: str, state: ServerState = Depends(server_state)) -> FileResponse:
    """tracks.json: per object and frame its RLE, box, area and score."""
    return FileResponse(state.videos.ready(key).out / "tracks.json", media_type="application/json", filename="tracks.json")


class Click(BaseModel):
    frame: int
    x: float
    y: float


@router.post("/{key}/click")
async def click(key: str, request: Click, state: ServerState = Depends(server_state)) -> dict:
    """With a SAM 2 model served: the clicked object followed through the video (a new track, or the track under the
    click redrawn). Without: the track under the click (0: none)."""
    from omniseg.inference.tracking.edits import follow_click, track_at

    session = state.videos.ready(key)
    sam2 = _sam2(state)
    if sam2 is None:
        return {"track": await state.run(track_at, session.out, request.frame, request.x, request.y), "action": "selected"}

    def follow() -> int:
        from omniseg.data.video import VideoFrames

        with session.lock, sam2.lock, VideoFrames(session.video) as frames:
            return follow_click(session.out, frames, sam2.predictor.model, request.frame, request.x, request.y)[0]

    return {"track": await state.run(follow), "action": "followed", "model": sam2.name}


class Merge(BaseModel):
    source: int
    target: int


@router.post("/{key}/merge")
async def merge(key: str, request: Merge, state: ServerState = Depends(server_state)) -> dict:
    """Track ``source`` joined into track ``target`` (an ID switch or a broken track undone)."""
    from omniseg.inference.tracking.edits import merge_tracks

    session = state.videos.ready(key)

    def join() -> dict:
        with session.lock:
            return merge_tracks(session.out, request.source, request.target)

    summary = await state.run(join)
    return {"merged": request.source, "into": request.target, "tracks": len(summary["objects"])}


def _sam2(state: ServerState) -> LoadedModel | None:
    """A served Segment Anything 2 model, if any."""
    from omniseg.models.promptable.sam2 import Sam2

    return next((m for m in state.models.values() if m.task == "promptable" and m.engine is None
                 and isinstance(getattr(m.predictor, "model", None), Sam2)), None)
