"""The parts of one chat completion: the request checked against the limits, the texts the safety layer
appends, and the answer as one response or as SSE chunks (role, text pieces, appended texts, finish, usage)."""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import HTTPException
from fastapi.responses import StreamingResponse

from mmedkit.models.base import BackendError, Message
from mmedkit.serve.engine import GenerationStats, GenParams
from mmedkit.serve.safety import SafetyPolicy, last_user_text
from mmedkit.serve.schemas import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatDelta,
    SafetyInfo,
    Usage,
)
from mmedkit.serve.service import Counters
from mmedkit.serve.settings import ServeConfig
from mmedkit.serve.streaming import event_stream, sse

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
log = logging.getLogger(__name__)
Tail = list[tuple[str, str]]
"""Texts appended after the model's answer, as (part, text): ``("note", ...)``, ``("disclaimer", ...)``."""


def conversation(req: ChatCompletionRequest, config: ServeConfig, policy: SafetyPolicy | None) -> list[Message]:
    """The request's messages as model turns, or 400 when the request breaks a limit."""
    if req.n != 1:
        raise HTTPException(400, "only n=1 is supported")
    if req.logprobs:
        raise HTTPException(400, "logprobs are not supported on chat completions; use /v1/completions")
    if len(req.messages) > config.max_messages:
        raise HTTPException(400, f"too many messages: {len(req.messages)} (limit {config.max_messages}); "
                                 "start a new conversation")
    turns = []
    for i, m in enumerate(req.messages):
        role = ROLES.get(m.role)
        if role is None:
            raise HTTPException(400, f"messages.{i}.role: {m.role!r} is not one of {', '.join(ROLES)}")
        content = m.as_message()["content"]
        if len(content) > config.max_message_chars:
            raise HTTPException(400, f"messages.{i}.content: {len(content)} characters "
                                     f"(limit {config.max_message_chars})")
        turns.append({"role": role, "content": content})
    if policy is not None and not last_user_text(turns).strip():
        raise HTTPException(400, "messages: the conversation needs a non-empty user message")
    return turns


def gen_params(req: ChatCompletionRequest, config: ServeConfig) -> GenParams:
    """How to generate the answer, or 400 when it asks for more tokens than the server allows."""
    limit = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    max_tokens = config.default_max_tokens if limit is None else limit
    if max_tokens > config.max_tokens:
        raise HTTPException(400, f"max_tokens: {max_tokens} is over this server's limit ({config.max_tokens})")
    stop = (req.stop,) if isinstance(req.stop, str) else tuple(s for s in req.stop or () if s)
    return GenParams(max_tokens=max_tokens, temperature=req.temperature, stop=stop)


def safety_tail(policy: SafetyPolicy | None, language: str | None, answer: str) -> Tail:
    """A dose note when ``answer`` names amounts, then the disclaimer (nothing without a policy)."""
    if policy is None or language is None:
        return []
    note = policy.dose_note(answer, language)
    return ([("note", note)] if note else []) + [("disclaimer", policy.disclaimer(language))]


def usage_of(stats: GenerationStats) -> Usage | None:
    """Token counts of a finished generation, when the backend reported them."""
    if stats.prompt_tokens is None or stats.completion_tokens is None:
        return None
    return Usage(prompt_tokens=stats.prompt_tokens, completion_tokens=stats.completion_tokens,
                 total_tokens=stats.prompt_tokens + stats.completion_tokens)


@dataclasses.dataclass
class Reply:
    """The answer being built: its id, creation time and model name, and what the safety layer did."""

    model: str
    safety: SafetyInfo | None = None
    id: str = dataclasses.field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    created: int = dataclasses.field(default_factory=lambda: int(time.time()))

    def response(self, text: str, finish: str | None, usage: Usage | None = None) -> ChatCompletionResponse:
        """The whole answer as one response."""
        choice = ChatChoice(index=0, message=AssistantMessage(content=text), finish_reason=finish)
        return ChatCompletionResponse(id=self.id, created=self.created, model=self.model, choices=[choice],
                                      usage=usage, safety=self.safety)

    def chunk(self, delta: ChatDelta | None, finish: str | None = None, **extra: Any) -> str:
        """One SSE chunk (no choice when ``delta`` is None: the usage chunk)."""
        choices = [] if delta is None else [ChatChunkChoice(index=0, delta=delta, finish_reason=finish)]
        return sse(ChatCompletionChunk(id=self.id, created=self.created, model=self.model, choices=choices, **extra))

    def opening(self) -> str:
        """The first chunk: the assistant role, with what the safety layer did."""
        return self.chunk(ChatDelta(role="assistant", content=""), safety=self.safety)


def fixed_answer(reply: Reply, text: str, stream: bool) -> ChatCompletionResponse | StreamingResponse:
    """A text answered at once, without queue or model (the emergency message)."""
    if not stream:
        return reply.response(text, "stop")

    async def events() -> AsyncIterator[str]:
        yield reply.opening()
        yield reply.chunk(ChatDelta(content=text))
        yield reply.chunk(ChatDelta(), "stop")
        yield sse("[DONE]")

    return event_stream(events())


async def chat_events(reply: Reply, pieces: AsyncIterator[str], stats: GenerationStats,
                      tail_for: Callable[[str], Tail], include_usage: bool, done: Callable[[str], None],
                      counters: Counters) -> AsyncIterator[str]:
    """SSE chunks of a streamed answer; a timeout or backend failure ends it with an error event.

    ``done`` receives the whole text (answer and appended texts) once the answer is complete.
    """
    yield reply.opening()
    answer: list[str] = []
    try:
        async for piece in pieces:
            answer.append(piece)
            yield reply.chunk(ChatDelta(content=piece))
    except Exception as exc:  # the stream has started: every failure ends it with an error event
        timed_out = isinstance(exc, TimeoutError)
        if timed_out:
            counters.timeouts += 1
        else:
            counters.errors += 1
        if not isinstance(exc, (TimeoutError, BackendError)):
            log.exception("a streamed answer failed")
        message = ("the answer took longer than the request timeout" if timed_out else
                   str(exc) if isinstance(exc, BackendError) else f"internal error: {type(exc).__name__}")
        yield sse({"error": {"message": message, "type": "server_error", "param": None, "code": 503}})
        yield sse("[DONE]")
        return
    text = "".join(answer)
    tail = tail_for(text)
    for part, extra in tail:
        yield reply.chunk(ChatDelta(content=f"\n\n{extra}"), part=part)
    yield reply.chunk(ChatDelta(), stats.finish_reason)
    usage = usage_of(stats)
    if include_usage and usage is not None:
        yield reply.chunk(None, usage=usage)
    yield sse("[DONE]")
    done(text + "".join(f"\n\n{t}" for _, t in tail))
