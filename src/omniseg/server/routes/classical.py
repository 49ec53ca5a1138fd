"""The classical methods (``omniseg segment --list``) on an uploaded image."""

from __future__ import annotations

import json
import time

import numpy as np
from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile

from omniseg.errors import OmnisegError
from omniseg.server.encoding import png_base64
from omniseg.server.state import ServerState, server_state

router = APIRouter(prefix="/api")


@router.post("/segment")
async def segment(file: UploadFile = File(...), method: str = Form(...), parameters: str = Form("{}"),
                  state: ServerState = Depends(server_state)) -> dict:
    """A classical method with JSON ``parameters``: 16-bit region ids as PNG."""
    from omniseg.classical.methods import METHODS, resolve_parameters

    if method not in METHODS:
        raise HTTPException(404, f"no classical method {method!r}; choose one of {', '.join(METHODS)}")
    try:
        chosen = resolve_parameters(method, json.loads(parameters))
    except (ValueError, TypeError) as exc:
        raise HTTPException(422, f"parameters: {exc}") from None
    if METHODS[method].marks == "seeds":
        raise HTTPException(422, f"{method} needs seeds; use /api/prompt with a prompt engine (grabcut, random-walker)")
    image = await state.read_upload(file)
    start = time.perf_counter()
    labels = await state.run(_segment, image, method, chosen)
    return {"method": method, "parameters": chosen, "regions": int(labels.max()) + 1,
            "labels_png": png_base64(labels.astype(np.uint16)), "seconds": round(time.perf_counter() - start, 4)}


def _segment(image: np.ndarray, method: str, parameters: dict) -> np.ndarray:
    from omniseg.classical.methods import segment as run_method

    try:
        return run_method(image, method, parameters)
    except ValueError as exc:
        raise OmnisegError(f"{method}: {exc}") from None
