"""Health and the served models."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from omniseg.server.state import ServerState, server_state

router = APIRouter(prefix="/api")


@router.get("/health")
async def health(state: ServerState = Depends(server_state)) -> dict:  # on the event loop: answers while slots are busy
    return {"status": "ok", "models": len(state.models), "cached_embeddings": len(state.cache)}


@router.get("/models")
async def list_models(state: ServerState = Depends(server_state)) -> list[dict]:
    return [m.describe() for m in state.models.values()]
