"""Every failure answered in the OpenAI error shape: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mmedkit.models.base import BackendError
from mmedkit.serve.deps import get_service
from mmedkit.serve.queue import QueueFull, QueueRefused
from mmedkit.serve.schemas import clean_text


def error_response(status: int, message: str, kind: str = "invalid_request_error",
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """An error answer with ``status``."""
    body = {"error": {"message": clean_text(message), "type": kind, "param": None, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


def error_kind(status: int) -> str:
    """The OpenAI error type of an HTTP status."""
    if status == 401:
        return "authentication_error"
    return "server_error" if status >= 500 else "invalid_request_error"


def backend_status(exc: Exception) -> tuple[int, str, dict[str, str] | None]:
    """HTTP status, error type and headers for a backend failure (an upstream's status mapped to ours)."""
    status = getattr(exc, "status", None)
    if status is None:
        return 400, "invalid_request_error", None
    retry = getattr(exc, "retry_after", None)
    if status in (429, 503):
        return 503, "server_error", {"Retry-After": str(max(1, round(retry or 1)))}
    if 400 <= status < 500 and status not in (401, 403):
        return 400, "invalid_request_error", None
    return 502, "upstream_error", None


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    kind = error_kind(exc.status_code)
    return error_response(exc.status_code, str(exc.detail), kind, headers=getattr(exc, "headers", None))


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    msg = "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
    return error_response(400, msg or "invalid request")


async def _refused(request: Request, exc: QueueRefused) -> JSONResponse:
    status = 429 if isinstance(exc, QueueFull) else 503
    kind = "rate_limit_error" if status == 429 else "server_error"
    return error_response(status, str(exc), kind, headers={"Retry-After": str(exc.retry_after)})


async def _backend_failed(request: Request, exc: BackendError) -> JSONResponse:
    get_service(request).counters.errors += 1
    status, kind, headers = backend_status(exc)
    return error_response(status, str(exc), kind, headers)


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    get_service(request).counters.errors += 1
    return error_response(500, f"internal error: {type(exc).__name__}", "server_error")


def add_error_handlers(app: FastAPI) -> None:
    """Answer HTTP errors, invalid bodies, queue refusals, backend failures and bugs as OpenAI errors."""
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(QueueRefused, _refused)  # type: ignore[arg-type]
    app.add_exception_handler(BackendError, _backend_failed)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _internal)
