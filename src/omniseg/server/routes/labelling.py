"""Saving an image and its kept objects into the labelling folder (``omniseg serve --label-dir``) as COCO."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile

from omniseg.server.encoding import decode_png_base64
from omniseg.server.labels import save_labels
from omniseg.server.state import ServerState, server_state
from omniseg.server.uploads import decode_upload

router = APIRouter(prefix="/api")


@router.post("/labels")
async def labels(file: UploadFile = File(...), objects: str = Form(...), state: ServerState = Depends(server_state)) -> dict:
    """Save the image and its kept objects (JSON ``[{"class": name, "mask_png": base64 0/255 PNG}]``)."""
    settings = state.settings
    if settings.label_dir is None:
        raise HTTPException(409, "no labelling folder: start the server with --label-dir DIR")
    data = await file.read(settings.max_upload_bytes + 1)
    image = decode_upload(data, file.filename or "the upload", settings)
    try:
        kept = [(str(o["class"]).strip(), decode_png_base64(o["mask_png"]) > 0) for o in json.loads(objects)]
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise HTTPException(422, f"objects must be [{{\"class\": name, \"mask_png\": base64 PNG}}]: {exc}") from None
    for name, mask in kept:
        if not name:
            raise HTTPException(422, "every object needs a class name")
        if mask.shape[:2] != image.shape[:2]:
            raise HTTPException(422, f"a mask of {name!r} is {mask.shape[1]} x {mask.shape[0]}, the image {image.shape[1]} x {image.shape[0]}")
    counts = await state.run(save_labels, settings.label_dir, file.filename or "image.png", data, image.shape[:2],
                             [(n, m if m.ndim == 2 else m[..., 0]) for n, m in kept])
    return {"saved": len(kept), "label_dir": str(settings.label_dir), **counts}
