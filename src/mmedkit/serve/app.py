"""The chat service: an OpenAI-compatible API with a safety layer, and the chat page — wired in one place.

Routes: ``GET /`` (the page), ``/static/*``, ``GET /api/config`` (:mod:`~mmedkit.serve.routes.page`),
``GET /healthz`` (:mod:`~mmedkit.serve.routes.health`), ``GET /v1/models`` and ``POST /v1/chat/completions``
(:mod:`~mmedkit.serve.routes.api`). Routes reach the app's :class:`~mmedkit.serve.service.Service` (backend,
limits, safety policy, queue, counters) and the API key check through :mod:`~mmedkit.serve.deps`.

Operations: a bounded admission queue in front of the model (429 / 503 with ``Retry-After`` instead of an
ever-growing backlog), one deadline per request covering wait and generation, limits on body size, message
count and message length, an optional API key, CORS closed unless origins are named, ``Host`` checked when
serving on loopback (DNS rebinding), security headers (CSP without inline script) on every response, and no
conversation written anywhere unless a log file is given.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from mmedkit.serve.backends import ChatBackend
from mmedkit.serve.deps import service_of
from mmedkit.serve.http_errors import add_error_handlers
from mmedkit.serve.middleware import add_middleware
from mmedkit.serve.routes import api, health, page
from mmedkit.serve.safety import SafetyPolicy
from mmedkit.serve.service import Service
from mmedkit.serve.settings import ServeConfig
from mmedkit.serve.ui import STATIC


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await service_of(app).backend.aclose()


def create_app(backend: ChatBackend, config: ServeConfig | None = None,
               policy: SafetyPolicy | None = None) -> FastAPI:
    """The service over ``backend``; with ``policy`` the safety layer applies to every chat request."""
    service = Service(backend, config or ServeConfig(), policy)
    app = FastAPI(title="mmedkit family-doctor chat", version="1", docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=_lifespan)
    app.state.service = service
    add_error_handlers(app)
    app.include_router(health.router)
    app.include_router(api.router)
    if service.config.page:
        app.include_router(page.router)
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    add_middleware(app, service.config)
    return app
