"""The chat page: ``GET /`` and ``GET /api/config`` (what the page needs: strings in six languages, the
disclaimers, the model's notice and the limits); the page's files are mounted at ``/static``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse

from mmedkit.languages import LANGUAGES
from mmedkit.serve.deps import ServiceDep
from mmedkit.serve.service import Service
from mmedkit.serve.ui import STATIC

router = APIRouter()


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


@router.get("/api/config")
async def page_config(service: ServiceDep) -> dict[str, Any]:
    return page_settings(service)


def page_settings(service: Service) -> dict[str, Any]:
    """What the page shows and enforces before sending."""
    config, policy = service.config, service.policy
    return {"model": service.model, "prompt_format": service.backend.prompt_format,
            "notice": service.backend.notice, "auth_required": config.api_key is not None,
            "languages": [{"code": c, "name": lang.native_name} for c, lang in LANGUAGES.items()],
            "ui": service.ui, "disclaimers": {c: policy.disclaimer(c) for c in LANGUAGES} if policy else {},
            "safety": policy is not None,
            "limits": {"max_message_chars": config.max_message_chars, "max_messages": config.max_messages,
                       "max_tokens": config.max_tokens}}
