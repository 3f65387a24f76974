"""The chat service: an OpenAI-compatible API with a safety layer, and the chat page.

Routes: ``GET /`` (the page), ``/static/*``, ``GET /api/config`` (what the page needs: strings in
six languages, notice, limits), ``GET /healthz``, ``GET /v1/models`` and
``POST /v1/chat/completions`` (streaming and not). With a :class:`SafetyPolicy`, every chat
request is screened for red flags before any model call and answered at once with the emergency
message when one is raised; otherwise the service's system prompt (in the user's language)
replaces any client one, and the disclaimer (plus a dose note when the answer names amounts) is
appended to the model's answer.

Operations: a bounded admission queue in front of the model (429 / 503 with ``Retry-After``
instead of an ever-growing backlog), one deadline per request covering wait and generation,
limits on body size, message count and message length, an optional API key, CORS closed unless
origins are named, ``Host`` checked when serving on loopback (DNS rebinding), security headers
(CSP without inline script) on every response, and no conversation written anywhere unless a
log file is given.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mmedkit.languages import LANGUAGES
from mmedkit.models.base import BackendError
from mmedkit.models.base import Message as ChatTurn
from mmedkit.serve.backends import ChatBackend
from mmedkit.serve.engine import GenerationStats, GenParams
from mmedkit.serve.queue import AdmissionQueue, QueueFull, QueueRefused, Ticket
from mmedkit.serve.safety import SafetyPolicy, last_user_text
from mmedkit.serve.schemas import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatDelta,
    ModelCard,
    ModelList,
    SafetyInfo,
    Usage,
)

log = logging.getLogger(__name__)

_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'")


def _package_path(*parts: str) -> Path:
    return Path(str(resources.files("mmedkit.serve").joinpath(*parts)))


@dataclass
class ServeConfig:
    """Limits and switches of the service (the defaults suit the public demo on one CPU)."""

    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] | None = None
    """Accepted ``Host`` header names (None: any); :func:`serve_config` sets loopback names on loopback."""
    max_body_bytes: int = 64 * 1024
    max_messages: int = 40
    max_message_chars: int = 8000
    max_tokens: int = 512
    """Most tokens one answer may ask for."""
    default_max_tokens: int = 256
    queue_size: int = 8
    """Requests that may wait while the backend's slots are busy; more get 429."""
    request_timeout: float = 120.0
    """Seconds from arrival to the answer's end (waiting included); then 503 / an error event."""
    conversation_log: Path | None = None
    page: bool = True
    served_name: str | None = None


class ConversationLog:
    """Appends one JSON line per exchange to a file readable by its owner only (off unless configured)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)


# ---------------------------------------------------------------- ASGI middleware
class BodyLimit:
    """Refuses request bodies over ``limit`` bytes with 413 (declared or streamed)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(self.limit, send)
            return
        body, more = [], True
        size = 0
        while more:
            msg = await receive()
            if msg["type"] != "http.request":
                break
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await _too_large(self.limit, send)
                return
            body.append(chunk)
            more = msg.get("more_body", False)
        replay = [{"type": "http.request", "body": b"".join(body), "more_body": False}]

        async def replayed() -> Message:
            return replay.pop() if replay else await receive()

        await self.app(scope, replayed, send)


async def _too_large(limit: int, send: Send) -> None:
    resp = _error(413, f"request body larger than {limit} bytes", "invalid_request_error")
    await send({"type": "http.response.start", "status": 413, "headers": resp.raw_headers})
    await send({"type": "http.response.body", "body": resp.body})


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
                headers += [(b"content-security-policy", _CSP.encode()), (b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY")]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                msg = {**msg, "headers": headers}
            await send(msg)

        await self.app(scope, receive, with_headers)


class _SlotStream(StreamingResponse):
    """A streamed answer that frees its queue slot however the response ends (done, error, client gone)."""

    def __init__(self, content: AsyncIterator[str], ticket: Ticket) -> None:
        super().__init__(content, media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})
        self.ticket = ticket

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.ticket.release()


# ---------------------------------------------------------------- helpers
def _error(status: int, message: str, kind: str = "invalid_request_error",
           headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": None, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


def sse(obj: BaseModel | dict[str, Any] | str) -> str:
    """One server-sent event; ``None`` extension fields (``safety``, ``part``) are left out."""
    if isinstance(obj, str):
        return f"data: {obj}\n\n"
    data = obj if isinstance(obj, dict) else obj.model_dump(mode="json")
    for key in ("safety", "part"):
        if data.get(key) is None:
            data.pop(key, None)
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _with_deadline(items: AsyncIterator[str], deadline: float) -> AsyncIterator[str]:
    """``items`` until the loop time passes ``deadline`` (then :class:`TimeoutError`; ``items`` is closed)."""
    loop = asyncio.get_running_loop()
    try:
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError
            try:
                item = await asyncio.wait_for(items.__anext__(), left)
            except StopAsyncIteration:
                return
            except asyncio.TimeoutError:
                raise TimeoutError from None
            yield item
    finally:
        await items.aclose()  # type: ignore[attr-defined]


def _status_of(exc: Exception) -> tuple[int, str, dict[str, str] | None]:
    """HTTP status, error type and headers for a backend failure."""
    status = getattr(exc, "status", None)
    if status is None:
        return 400, "invalid_request_error", None
    retry = getattr(exc, "retry_after", None)
    if status in (429, 503):
        return 503, "server_error", {"Retry-After": str(max(1, round(retry or 1)))}
    if 400 <= status < 500 and status not in (401, 403):
        return 400, "invalid_request_error", None
    return 502, "upstream_error", None


def load_ui_strings(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """The page's strings per language (``serve/data/ui.yaml``), checked for missing keys."""
    path = path or _package_path("data", "ui.yaml")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "en" not in data:
        raise ValueError(f"{path}: expected a mapping with an 'en' block")
    for code in LANGUAGES:
        if code not in data:
            raise ValueError(f"{path}: language {code!r} is missing")
        missing = sorted(set(data["en"]) - set(data[code]))
        if missing:
            raise ValueError(f"{path}: {code}: missing keys {', '.join(missing)}")
    return data


# ---------------------------------------------------------------- the app
def create_app(backend: ChatBackend, config: ServeConfig | None = None,
               policy: SafetyPolicy | None = None) -> FastAPI:
    """The service over ``backend``; with ``policy`` the safety layer applies to every chat request."""
    config = config or ServeConfig()
    served = config.served_name or backend.model_id
    started = int(time.time())
    queue = AdmissionQueue(slots=backend.slots, max_waiting=config.queue_size)
    counters = {"generations": 0, "red_flags": 0, "timeouts": 0, "errors": 0}
    convlog = ConversationLog(config.conversation_log) if config.conversation_log else None
    ui = load_ui_strings() if config.page else {}
    expected = f"Bearer {config.api_key}".encode() if config.api_key else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await backend.aclose()

    app = FastAPI(title="mmedkit family-doctor chat", version="1", docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    app.state.queue = queue
    app.state.counters = counters

    async def check_key(authorization: Annotated[str | None, Header()] = None) -> None:
        if expected is not None and not secrets.compare_digest((authorization or "").encode(), expected):
            raise HTTPException(401, "invalid or missing API key", headers={"WWW-Authenticate": "Bearer"})

    app.state.auth = [Depends(check_key)]

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "authentication_error" if exc.status_code == 401 else "invalid_request_error"
        return _error(exc.status_code, str(exc.detail), kind, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        msg = "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        return _error(400, msg or "invalid request")

    @app.exception_handler(QueueRefused)
    async def refused(request: Request, exc: QueueRefused) -> JSONResponse:
        status = 429 if isinstance(exc, QueueFull) else 503
        kind = "rate_limit_error" if status == 429 else "server_error"
        return _error(status, str(exc), kind, headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(BackendError)
    async def backend_error(request: Request, exc: BackendError) -> JSONResponse:
        status, kind, headers = _status_of(exc)
        counters["errors"] += 1
        return _error(status, str(exc), kind, headers)

    async def admit(deadline: float) -> Ticket:
        """A queue slot before ``deadline`` (loop time), or 429 / 503."""
        return await queue.acquire(deadline - asyncio.get_running_loop().time())

    app.state.admit = admit

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "model": served, "queue": queue.stats(), **counters,
                "safety": policy is not None, "backend": backend.describe()}

    @app.get("/v1/models", dependencies=app.state.auth)
    async def models() -> ModelList:
        return ModelList(data=[ModelCard(id=served, created=started)])

    def check_request(req: ChatCompletionRequest) -> list[ChatTurn]:
        if req.n != 1:
            raise HTTPException(400, "only n=1 is supported")
        if req.logprobs:
            raise HTTPException(400, "logprobs are not supported on chat completions; use /v1/completions")
        if len(req.messages) > config.max_messages:
            raise HTTPException(400, f"too many messages: {len(req.messages)} (limit {config.max_messages}); "
                                     "start a new conversation")
        turns = []
        for i, m in enumerate(req.messages):
            role = _ROLES.get(m.role)
            if role is None:
                raise HTTPException(400, f"messages.{i}.role: {m.role!r} is not one of {', '.join(_ROLES)}")
            turn = m.as_message()
            if len(turn["content"]) > config.max_message_chars:
                raise HTTPException(400, f"messages.{i}.content: {len(turn['content'])} characters "
                                         f"(limit {config.max_message_chars})")
            turns.append({"role": role, "content": turn["content"]})
        if policy is not None and not last_user_text(turns).strip():
            raise HTTPException(400, "messages: the conversation needs a non-empty user message")
        return turns

    def params_of(req: ChatCompletionRequest) -> GenParams:
        limit = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
        max_tokens = config.default_max_tokens if limit is None else limit
        if max_tokens > config.max_tokens:
            raise HTTPException(400, f"max_tokens: {max_tokens} is over this server's limit ({config.max_tokens})")
        stop = (req.stop,) if isinstance(req.stop, str) else tuple(s for s in req.stop or () if s)
        return GenParams(max_tokens=max_tokens, temperature=req.temperature, stop=stop)

    def record(rid: str, turns: list[ChatTurn], answer: str, info: SafetyInfo | None) -> None:
        if convlog is not None:
            convlog.write({"id": rid, "time": round(time.time(), 3), "model": served,
                           "safety": info.model_dump() if info else None,
                           "messages": [t for t in turns if t["role"] != "system"], "answer": answer})

    @app.post("/v1/chat/completions", dependencies=app.state.auth, response_model=None)
    async def chat_completions(req: ChatCompletionRequest) -> ChatCompletionResponse | StreamingResponse:
        deadline = asyncio.get_running_loop().time() + config.request_timeout
        turns = check_request(req)
        params = params_of(req)
        rid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        info: SafetyInfo | None = None
        tail: list[tuple[str, str]] = []
        prompt = turns
        if policy is not None:
            user_text = last_user_text(turns)
            lang = policy.detect_language(user_text, req.language)
            flag = policy.screen(user_text, lang)
            if flag is not None:
                counters["red_flags"] += 1
                info = SafetyInfo(language=lang, red_flag=flag.category)
                text = policy.emergency_message(flag, lang)
                record(rid, turns, text, info)
                return _fixed_answer(rid, created, served, text, info, req.stream)
            prompt = policy.prepare(turns, lang)
            info = SafetyInfo(language=lang, notes=["disclaimer"])

            def tail_for(answer: str) -> list[tuple[str, str]]:
                note = policy.dose_note(answer, lang)
                return ([("note", note)] if note else []) + [("disclaimer", policy.disclaimer(lang))]
        else:
            def tail_for(answer: str) -> list[tuple[str, str]]:
                return []

        ticket = await admit(deadline)
        counters["generations"] += 1
        stats = GenerationStats()
        pieces = _with_deadline(backend.stream(prompt, params, stats), deadline)
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            events = _chat_events(rid, created, served, pieces, stats, info, tail_for, include_usage,
                                  lambda answer: record(rid, turns, answer, info), counters)
            return _SlotStream(events, ticket)
        try:
            answer = "".join([p async for p in pieces])
        except TimeoutError:
            counters["timeouts"] += 1
            raise HTTPException(503, f"the answer took longer than the request timeout ({config.request_timeout:g} s)",
                                headers={"Retry-After": str(queue.retry_after())}) from None
        finally:
            ticket.release()
        tail = tail_for(answer)
        if info is not None and any(part == "note" for part, _ in tail):
            info.notes.insert(0, "dose")
        text = answer + "".join(f"\n\n{t}" for _, t in tail)
        record(rid, turns, text, info)
        choice = ChatChoice(index=0, message=AssistantMessage(content=text), finish_reason=stats.finish_reason)
        return ChatCompletionResponse(id=rid, created=created, model=served, choices=[choice],
                                      usage=_usage(stats), safety=info)

    if config.page:
        _add_page(app, backend, config, policy, ui)
    _add_middleware(app, config)
    return app


def _usage(stats: GenerationStats) -> Usage | None:
    if stats.prompt_tokens is None or stats.completion_tokens is None:
        return None
    return Usage(prompt_tokens=stats.prompt_tokens, completion_tokens=stats.completion_tokens,
                 total_tokens=stats.prompt_tokens + stats.completion_tokens)


def _chunk(rid: str, created: int, served: str, delta: ChatDelta, finish: str | None = None,
           **extra: Any) -> str:
    choice = ChatChunkChoice(index=0, delta=delta, finish_reason=finish)
    return sse(ChatCompletionChunk(id=rid, created=created, model=served, choices=[choice], **extra))


def _fixed_answer(rid: str, created: int, served: str, text: str, info: SafetyInfo,
                  stream: bool) -> ChatCompletionResponse | StreamingResponse:
    """The emergency message: answered at once, no queue, no model."""
    if not stream:
        choice = ChatChoice(index=0, message=AssistantMessage(content=text), finish_reason="stop")
        return ChatCompletionResponse(id=rid, created=created, model=served, choices=[choice], safety=info)

    async def events() -> AsyncIterator[str]:
        yield _chunk(rid, created, served, ChatDelta(role="assistant", content=""), safety=info)
        yield _chunk(rid, created, served, ChatDelta(content=text))
        yield _chunk(rid, created, served, ChatDelta(), "stop")
        yield sse("[DONE]")

    return StreamingResponse(events(), media_type="text/event-stream")


async def _chat_events(rid: str, created: int, served: str, pieces: AsyncIterator[str], stats: GenerationStats,
                       info: SafetyInfo | None, tail_for: Callable[[str], list[tuple[str, str]]],
                       include_usage: bool, done: Callable[[str], None], counters: dict[str, int]
                       ) -> AsyncIterator[str]:
    """SSE chunks of a streamed answer: role, text pieces, appended texts, finish, usage, [DONE]."""
    yield _chunk(rid, created, served, ChatDelta(role="assistant", content=""), safety=info)
    answer: list[str] = []
    try:
        async for piece in pieces:
            answer.append(piece)
            yield _chunk(rid, created, served, ChatDelta(content=piece))
    except (TimeoutError, BackendError) as exc:
        counters["timeouts" if isinstance(exc, TimeoutError) else "errors"] += 1
        message = "the answer took longer than the request timeout" if isinstance(exc, TimeoutError) else str(exc)
        yield sse({"error": {"message": message, "type": "server_error", "param": None, "code": 503}})
        yield sse("[DONE]")
        return
    text = "".join(answer)
    tail = tail_for(text)
    for part, extra in tail:
        yield _chunk(rid, created, served, ChatDelta(content=f"\n\n{extra}"), part=part)
    yield _chunk(rid, created, served, ChatDelta(), stats.finish_reason)
    usage = _usage(stats)
    if include_usage and usage is not None:
        yield sse(ChatCompletionChunk(id=rid, created=created, model=served, choices=[], usage=usage))
    yield sse("[DONE]")
    done(text + "".join(f"\n\n{t}" for _, t in tail))


def _add_page(app: FastAPI, backend: ChatBackend, config: ServeConfig, policy: SafetyPolicy | None,
              ui: dict[str, dict[str, Any]]) -> None:
    static = _package_path("static")
    app.mount("/static", StaticFiles(directory=static), name="static")
    languages = [{"code": c, "name": lang.native_name} for c, lang in LANGUAGES.items()]
    disclaimers = {c: policy.disclaimer(c) for c in LANGUAGES} if policy else {}
    settings = {"model": config.served_name or backend.model_id, "notice": backend.notice,
                "auth_required": config.api_key is not None, "languages": languages, "ui": ui,
                "disclaimers": disclaimers, "safety": policy is not None,
                "limits": {"max_message_chars": config.max_message_chars, "max_messages": config.max_messages,
                           "max_tokens": config.max_tokens}}

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(static / "index.html", media_type="text/html; charset=utf-8")

    @app.get("/api/config")
    async def page_config() -> dict[str, Any]:
        return settings


def _add_middleware(app: FastAPI, config: ServeConfig) -> None:
    """Body limit, security headers, CORS (only for named origins) and Host check, innermost first."""
    app.add_middleware(BodyLimit, limit=config.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    if config.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"], max_age=600)
    if config.allowed_hosts:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(config.allowed_hosts))


def default_allowed_hosts(host: str) -> tuple[str, ...] | None:
    """``Host`` names to accept when binding ``host``: loopback names on loopback, else any."""
    return ("127.0.0.1", "localhost") if host in ("127.0.0.1", "localhost") else None

