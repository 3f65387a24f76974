"""A minimal OpenAI-compatible HTTP server over a transformers model (:class:`HFModel`).

Endpoints: ``GET /v1/models``, ``GET /healthz``, ``POST /v1/chat/completions`` and
``POST /v1/completions`` (both with optional SSE streaming). ``/v1/completions`` supports
``echo`` + ``logprobs`` with ``max_tokens: 0``, so the ``openai`` backend can score answers
against it exactly as it would against vLLM.

Behaviour worth knowing:

* model calls run in a thread pool, one at a time (a lock serializes them);
* streaming generates the whole answer first, then sends it in a few chunks;
* ``logprobs`` are real log-probabilities of every returned token (prompt tokens and generated
  tokens alike: the generated text is re-scored together with the prompt); the first token of
  a prompt has ``null``, as with OpenAI; ``top_logprobs`` is always ``null``;
* ``text_offset`` counts characters of prompt + completion, also when ``echo`` is false;
* a text prompt that already starts with the tokenizer's BOS text (a chat template rendered by
  the client) is not given a second BOS;
* the request's ``model`` field is not checked: every request goes to the one loaded model;
* ``temperature`` defaults to 1 (sampling), as in the OpenAI API; send 0 for greedy decoding.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from mmedkit.models.base import BackendError, GenerationRequest, Message
from mmedkit.models.hf import HFModel

log = logging.getLogger(__name__)

T = TypeVar("T")


# ---------------------------------------------------------------- request / response models
class ContentPart(BaseModel):
    """One part of a multi-part message content; only text parts are supported."""

    type: str = "text"
    text: str | None = None


class ChatMessage(BaseModel):
    """A chat message."""

    role: str
    content: str | list[ContentPart] | None = None

    def as_message(self) -> Message:
        """The message as the ``{"role", "content"}`` dict models take."""
        content = self.content
        if isinstance(content, list):
            if any(p.type != "text" for p in content):
                raise HTTPException(400, "only text message content is supported")
            content = "".join(p.text or "" for p in content)
        return {"role": self.role, "content": content or ""}


class StreamOptions(BaseModel):
    """``stream_options``: ``include_usage`` adds a final chunk with token counts."""

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions`` body (unknown fields are ignored)."""

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=0)
    max_completion_tokens: int | None = Field(default=None, ge=0)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = 1
    logprobs: bool | None = None


class CompletionRequest(BaseModel):
    """``POST /v1/completions`` body (unknown fields are ignored)."""

    model: str | None = None
    prompt: str | list[str]
    max_tokens: int | None = Field(default=16, ge=0)
    echo: bool = False
    logprobs: int | None = Field(default=None, ge=0, le=20)
    stop: str | list[str] | None = None
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = 1


class Usage(BaseModel):
    """Token counts."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    """The generated message."""

    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    """One chat completion."""

    index: int
    message: AssistantMessage
    finish_reason: str | None
    logprobs: None = None


class ChatCompletionResponse(BaseModel):
    """``POST /v1/chat/completions`` answer."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class ChatDelta(BaseModel):
    """What a streamed chunk adds to the message."""

    role: str | None = None
    content: str | None = None


class ChatChunkChoice(BaseModel):
    """One choice of a streamed chunk."""

    index: int
    delta: ChatDelta
    finish_reason: str | None = None


class ChatCompletionChunk(BaseModel):
    """One SSE chunk of a streamed chat completion."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None


class CompletionLogprobs(BaseModel):
    """Legacy completions log-probabilities, one entry per token."""

    tokens: list[str]
    token_logprobs: list[float | None]
    text_offset: list[int]
    top_logprobs: list[dict[str, float]] | None = None


class CompletionChoice(BaseModel):
    """One text completion."""

    index: int
    text: str
    logprobs: CompletionLogprobs | None = None
    finish_reason: str | None


class CompletionResponse(BaseModel):
    """``POST /v1/completions`` answer (also the shape of its streamed chunks)."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    """One entry of ``GET /v1/models``."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "mmedkit"


class ModelList(BaseModel):
    """``GET /v1/models`` answer."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


# ---------------------------------------------------------------- model access
def _bos_prefix(tokenizer: Any) -> str:
    """The BOS token's text if the tokenizer adds BOS by itself, else ``""``."""
    bos = getattr(tokenizer, "bos_token", None)
    if not bos or tokenizer.bos_token_id is None:
        return ""
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return bos if ids and ids[0] == tokenizer.bos_token_id else ""


class _Engine:
    """Synchronous model calls; the caller holds ``lock``."""

    def __init__(self, model: HFModel) -> None:
        self.model = model
        self.lock = threading.Lock()
        self.bos = _bos_prefix(model.tokenizer)

    def count(self, text: str, special: bool) -> int:
        return len(self.model.encode(text, special)) if text or special else 0

    def _generate(self, prompt: str | list[Message], max_tokens: int, stop: tuple[str, ...],
                  temperature: float) -> str:
        if max_tokens <= 0:
            return ""
        req = GenerationRequest(prompt, max_new_tokens=max_tokens, stop=stop, temperature=temperature)
        return self.model.generate([req])[0]

    def chat(self, messages: list[Message], max_tokens: int, stop: tuple[str, ...],
             temperature: float) -> tuple[str, int, int]:
        """Generated text, prompt tokens, completion tokens."""
        text, special = self.model.render(messages)
        gen = self._generate(messages, max_tokens, stop, temperature)
        return gen, self.count(text, special), self.count(gen, False)

    def complete(self, prompt: str, max_tokens: int, stop: tuple[str, ...], temperature: float,
                 logprobs: bool, echo: bool) -> tuple[str, CompletionLogprobs | None, int, int]:
        """Returned text, log-probabilities, prompt tokens, completion tokens."""
        shift = len(self.bos) if self.bos and prompt.startswith(self.bos) else 0
        body = prompt[shift:]  # the tokenizer adds BOS again
        gen = self._generate(body, max_tokens, stop, temperature)
        lp = None
        if logprobs:
            entries = [(tok, off + shift, val) for tok, off, val in self.model.prompt_logprobs(body + gen)]
            if shift:
                entries.insert(0, (self.bos, 0, None))
            if not echo:
                entries = [e for e in entries if e[1] >= len(prompt)]
            lp = CompletionLogprobs(tokens=[e[0] for e in entries], token_logprobs=[e[2] for e in entries],
                                    text_offset=[e[1] for e in entries])
        text = prompt + gen if echo else gen
        return text, lp, self.count(body, True), self.count(gen, False)


def _stops(stop: str | list[str] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    return (stop,) if isinstance(stop, str) else tuple(s for s in stop if s)


def _finish(completion_tokens: int, max_tokens: int) -> str:
    return "length" if completion_tokens >= max_tokens else "stop"


def _pieces(text: str, n: int = 4) -> list[str]:
    """``text`` cut into about ``n`` chunks for streaming."""
    if not text:
        return []
    size = max(1, math.ceil(len(text) / n))
    return [text[i:i + size] for i in range(0, len(text), size)]


def _sse(obj: BaseModel | str) -> str:
    data = obj if isinstance(obj, str) else obj.model_dump_json()
    return f"data: {data}\n\n"


def _stream(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _error(status: int, message: str, kind: str = "invalid_request_error",
           headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": None, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


# ---------------------------------------------------------------- app
def create_app(model: HFModel, *, model_id: str | None = None, api_key: str | None = None) -> FastAPI:
    """An OpenAI-compatible FastAPI app serving ``model`` under ``model_id`` (default: its name).

    With ``api_key``, every ``/v1`` route requires ``Authorization: Bearer <api_key>``.
    """
    engine = _Engine(model)
    served = model_id or model.name
    started = int(time.time())
    app = FastAPI(title="mmedkit OpenAI-compatible API", version="1")
    expected = f"Bearer {api_key}".encode() if api_key else None

    async def check_key(authorization: Annotated[str | None, Header()] = None) -> None:
        if expected is not None and not secrets.compare_digest((authorization or "").encode(), expected):
            raise HTTPException(401, "invalid or missing API key", headers={"WWW-Authenticate": "Bearer"})

    auth = [Depends(check_key)]

    async def call(fn: Callable[..., T], *args: Any) -> T:
        def locked() -> T:
            with engine.lock:
                return fn(*args)

        return await run_in_threadpool(locked)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "authentication_error" if exc.status_code == 401 else "invalid_request_error"
        return _error(exc.status_code, str(exc.detail), kind, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        msg = "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        return _error(400, msg or "invalid request")

    @app.exception_handler(BackendError)
    async def backend_error(request: Request, exc: BackendError) -> JSONResponse:
        return _error(400, str(exc))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "model": served}

    @app.get("/v1/models", dependencies=auth)
    async def models() -> ModelList:
        return ModelList(data=[ModelCard(id=served, created=started)])

    @app.post("/v1/chat/completions", dependencies=auth, response_model=None)
    async def chat_completions(req: ChatCompletionRequest) -> ChatCompletionResponse | StreamingResponse:
        if req.n != 1:
            raise HTTPException(400, "only n=1 is supported")
        if req.logprobs:
            raise HTTPException(400, "logprobs are not supported on chat completions; use /v1/completions")
        messages = [m.as_message() for m in req.messages]
        limit = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
        max_tokens = 256 if limit is None else limit
        stop = _stops(req.stop)
        text, n_prompt, n_gen = await call(engine.chat, messages, max_tokens, stop, req.temperature)
        usage = Usage(prompt_tokens=n_prompt, completion_tokens=n_gen, total_tokens=n_prompt + n_gen)
        rid, created, finish = f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), _finish(n_gen, max_tokens)
        if not req.stream:
            choice = ChatChoice(index=0, message=AssistantMessage(content=text), finish_reason=finish)
            return ChatCompletionResponse(id=rid, created=created, model=served, choices=[choice],
                                          usage=usage)

        def chunk(delta: ChatDelta, finish_reason: str | None = None) -> str:
            choice = ChatChunkChoice(index=0, delta=delta, finish_reason=finish_reason)
            return _sse(ChatCompletionChunk(id=rid, created=created, model=served, choices=[choice]))

        async def events() -> AsyncIterator[str]:
            yield chunk(ChatDelta(role="assistant", content=""))
            for piece in _pieces(text):
                yield chunk(ChatDelta(content=piece))
            yield chunk(ChatDelta(), finish)
            if req.stream_options and req.stream_options.include_usage:
                yield _sse(ChatCompletionChunk(id=rid, created=created, model=served, choices=[],
                                               usage=usage))
            yield _sse("[DONE]")

        return _stream(events())

    @app.post("/v1/completions", dependencies=auth, response_model=None)
    async def completions(req: CompletionRequest) -> CompletionResponse | StreamingResponse:
        if req.n != 1:
            raise HTTPException(400, "only n=1 is supported")
        if req.stream and req.logprobs is not None:
            raise HTTPException(400, "logprobs are not supported with stream=true")
        prompts: Sequence[str] = [req.prompt] if isinstance(req.prompt, str) else req.prompt
        max_tokens = 16 if req.max_tokens is None else req.max_tokens
        choices: list[CompletionChoice] = []
        n_prompt = n_gen = 0
        for i, prompt in enumerate(prompts):
            text, lp, p, g = await call(engine.complete, prompt, max_tokens, _stops(req.stop),
                                        req.temperature, req.logprobs is not None, req.echo)
            choices.append(CompletionChoice(index=i, text=text, logprobs=lp,
                                            finish_reason=_finish(g, max_tokens)))
            n_prompt, n_gen = n_prompt + p, n_gen + g
        usage = Usage(prompt_tokens=n_prompt, completion_tokens=n_gen, total_tokens=n_prompt + n_gen)
        rid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        if not req.stream:
            return CompletionResponse(id=rid, created=created, model=served, choices=choices, usage=usage)

        def chunk(index: int, text: str, finish_reason: str | None = None) -> str:
            choice = CompletionChoice(index=index, text=text, finish_reason=finish_reason)
            return _sse(CompletionResponse(id=rid, created=created, model=served, choices=[choice]))

        async def events() -> AsyncIterator[str]:
            for c in choices:
                for piece in _pieces(c.text):
                    yield chunk(c.index, piece)
                yield chunk(c.index, "", c.finish_reason)
            if req.stream_options and req.stream_options.include_usage:
                yield _sse(CompletionResponse(id=rid, created=created, model=served, choices=[], usage=usage))
            yield _sse("[DONE]")

        return _stream(events())

    return app


# ---------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> None:
    """``python -m mmedkit.serve.openai_api --model PATH [--host H] [--port P] [--api-key-env NAME]``."""
    parser = argparse.ArgumentParser(prog="python -m mmedkit.serve.openai_api",
                                     description="Serve a transformers model over an OpenAI-compatible API.")
    parser.add_argument("--model", required=True, help="local path or hub id of a causal LM")
    parser.add_argument("--model-id", default=None, help="name to serve the model under (default: --model)")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1, local only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--api-key-env", default=None,
                        help="environment variable holding the API key clients must send (default: no key)")
    parser.add_argument("--dtype", default="auto", help="auto, float32, bfloat16 or float16")
    parser.add_argument("--device", default=None, help="cuda, cpu, mps (default: best available)")
    parser.add_argument("--adapter", default=None, help="PEFT adapter to load on top of the model")
    parser.add_argument("--trust-remote-code", action="store_true")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)

    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            parser.error(f"environment variable {args.api_key_env} (from --api-key-env) is not set or empty")
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if args.host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        log.warning("serving on %s without an API key: anyone who can reach it can use the model", args.host)

    import uvicorn

    try:
        model = HFModel(args.model, dtype=args.dtype, device=args.device, adapter=args.adapter,
                        trust_remote_code=args.trust_remote_code)
    except BackendError as exc:
        parser.exit(1, f"error: {exc}\n")
    app = create_app(model, model_id=args.model_id, api_key=api_key)
    log.info("serving %s at http://%s:%d/v1", args.model_id or args.model, args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level.lower())


if __name__ == "__main__":
    main()
