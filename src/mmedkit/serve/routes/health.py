"""``GET /healthz``: the model, the queue, the counters and the backend (no API key needed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from mmedkit.serve.deps import ServiceDep

router = APIRouter()


@router.get("/healthz")
async def healthz(service: ServiceDep) -> dict[str, Any]:
    return service.health()
