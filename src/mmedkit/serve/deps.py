"""Typed dependencies of the routes: the app's :class:`Service`, the API key check and admission to the queue.

Routes declare what they need as parameters (``service: ServiceDep``, ``admission: AdmissionDep``); the
API key guards whole routers (``APIRouter(dependencies=[Depends(require_api_key)])``).
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Request

from mmedkit.serve.queue import AdmissionQueue, Ticket
from mmedkit.serve.service import Service


def service_of(app: FastAPI) -> Service:
    """The :class:`Service` that :func:`~mmedkit.serve.app.create_app` attached to ``app``."""
    return app.state.service


def get_service(request: Request) -> Service:
    """The :class:`Service` of the app serving ``request``."""
    return service_of(request.app)


ServiceDep = Annotated[Service, Depends(get_service)]


async def require_api_key(service: ServiceDep, authorization: Annotated[str | None, Header()] = None) -> None:
    """401 unless the request carries ``Authorization: Bearer <key>`` (when the service has a key)."""
    key = service.config.api_key
    if key is not None and not secrets.compare_digest((authorization or "").encode(), f"Bearer {key}".encode()):
        raise HTTPException(401, "invalid or missing API key", headers={"WWW-Authenticate": "Bearer"})


class Admission:
    """A request's way to the model: one deadline from its arrival, covering the wait and the answer."""

    def __init__(self, queue: AdmissionQueue, timeout: float) -> None:
        self.queue = queue
        self.deadline = asyncio.get_running_loop().time() + timeout
        """Event-loop time by which the answer must be complete."""

    async def ticket(self) -> Ticket:
        """A queue slot before the deadline; else :class:`QueueFull` (429) or :class:`QueueTimeout` (503)."""
        return await self.queue.acquire(self.deadline - asyncio.get_running_loop().time())


async def admission(service: ServiceDep) -> Admission:
    """The request's :class:`Admission`, its deadline counted from now."""
    return Admission(service.queue, service.config.request_timeout)


AdmissionDep = Annotated[Admission, Depends(admission)]
