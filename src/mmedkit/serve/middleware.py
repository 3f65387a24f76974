"""ASGI middleware around every route: body size and time limits, requests in progress, security headers, CORS
and the ``Host`` check."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mmedkit.serve.http_errors import error_response
from mmedkit.serve.settings import ServeConfig

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'")


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes with 413 (declared or streamed), and bodies not received
    within ``timeout`` seconds with 408 (slow senders would otherwise hold connections for ever)."""

    def __init__(self, app: ASGIApp, limit: int, timeout: float = 10.0) -> None:
        self.app, self.limit, self.timeout = app, limit, timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _refuse(send, 413, f"request body larger than {self.limit} bytes")
            return
        try:
            body = await asyncio.wait_for(self._read(receive), self.timeout)
        except asyncio.TimeoutError:
            await _refuse(send, 408, f"request body not received within {self.timeout:g} s")
            return
        if body is None:
            await _refuse(send, 413, f"request body larger than {self.limit} bytes")
            return
        replay = [{"type": "http.request", "body": body, "more_body": False}]

        async def replayed() -> Message:
            return replay.pop() if replay else await receive()

        await self.app(scope, replayed, send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it is over the limit."""
        body, more, size = [], True, 0
        while more:
            msg = await receive()
            if msg["type"] != "http.request":
                break
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return None
            body.append(chunk)
            more = msg.get("more_body", False)
        return b"".join(body)


async def _refuse(send: Send, status: int, message: str) -> None:
    """Answer ``status`` before the app sees the request, and close the connection."""
    resp = error_response(status, message, headers={"Connection": "close"})
    await send({"type": "http.response.start", "status": status, "headers": resp.raw_headers})
    await send({"type": "http.response.body", "body": resp.body})


class InFlightLimit:
    """At most ``limit`` requests in progress (reading, waiting or answering); more get 429 at once, so that
    slow or idle clients cannot lock everyone out. ``/healthz`` always passes."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit
        self.active = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") == "/healthz":
            await self.app(scope, receive, send)
            return
        if self.active >= self.limit:
            resp = error_response(429, f"too many requests in progress (limit {self.limit})", "rate_limit_error",
                                  headers={"Retry-After": "1", "Connection": "close"})
            await resp(scope, receive, send)
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1


class SecurityHeaders:
    """Adds CSP, nosniff, no-referrer and no-store (except for static files) to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def with_headers(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                headers = list(msg.get("headers") or [])
                headers += [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY")]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                msg = {**msg, "headers": headers}
            await send(msg)

        await self.app(scope, receive, with_headers)


def add_middleware(app: FastAPI, config: ServeConfig) -> None:
    """Body limit, requests in progress, security headers, CORS (only for named origins) and Host check,
    innermost first."""
    app.add_middleware(BodyLimit, limit=config.max_body_bytes, timeout=config.body_timeout)
    app.add_middleware(InFlightLimit, limit=config.max_in_flight)
    app.add_middleware(SecurityHeaders)
    if config.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"], max_age=600)
    if config.allowed_hosts:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(config.allowed_hosts))
