"""OpenAI-compatible request and response bodies (pydantic), shared by every serving app.

Unknown request fields are ignored, as OpenAI clients send many. Two extension fields exist:
requests may carry ``language`` (the chat page's language, a hint for language detection), and
chat responses and chunks may carry ``safety`` (what the safety layer did) and chunks ``part``
(``"disclaimer"`` or ``"note"`` for text the service appended). OpenAI clients ignore them.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import HTTPException
from pydantic import AfterValidator, BaseModel, Field

from mmedkit.models.base import Message

MAX_STOP_STRINGS = 8
"""Most stop strings one request may give (each is matched against the whole vocabulary: thousands take minutes)."""
MAX_STOP_CHARS = 64
"""Longest stop string."""
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` with lone UTF-16 surrogates (``"\\ud800"`` in JSON: no character) replaced by U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def check_stop(stop: str | list[str] | None) -> str | list[str] | None:
    """``stop`` within :data:`MAX_STOP_STRINGS` strings of :data:`MAX_STOP_CHARS` characters."""
    strings = [stop] if isinstance(stop, str) else stop or []
    if len(strings) > MAX_STOP_STRINGS:
        raise ValueError(f"at most {MAX_STOP_STRINGS} stop strings (got {len(strings)})")
    if any(len(s) > MAX_STOP_CHARS for s in strings):
        raise ValueError(f"a stop string may have at most {MAX_STOP_CHARS} characters")
    return stop


Text = Annotated[str, AfterValidator(clean_text)]
Stop = Annotated[Text | list[Text] | None, AfterValidator(check_stop)]


class ContentPart(BaseModel):
    """One part of a multi-part message content; only text parts are supported."""

    type: str = "text"
    text: Text | None = None


class ChatMessage(BaseModel):
    """A chat message."""

    role: Text
    content: Text | list[ContentPart] | None = None

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
    stop: Stop = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = 1
    logprobs: bool | None = None
    language: Text | None = None
    """Extension: the chat page's language, used when a message's own language is unclear."""


class CompletionRequest(BaseModel):
    """``POST /v1/completions`` body (unknown fields are ignored)."""

    model: str | None = None
    prompt: Text | list[Text]
    max_tokens: int | None = Field(default=16, ge=0)
    echo: bool = False
    logprobs: int | None = Field(default=None, ge=0, le=20)
    stop: Stop = None
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


class SafetyInfo(BaseModel):
    """Extension: what the safety layer did with a chat request."""

    language: str
    """Language detected for the last user message (the answer's language)."""
    red_flag: str | None = None
    """Red-flag category raised by the conversation; the answer is then the emergency message."""
    evidence: str | None = None
    """With ``red_flag``: the phrases that raised it (``chest pressure + cold sweat``), for reviewers."""
    turn: int | None = None
    """With ``red_flag``: index in ``messages`` of the user turn that completed it."""
    notes: list[str] = Field(default_factory=list)
    """Texts appended after the model's answer: ``disclaimer``, ``dose``."""


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
    usage: Usage | None = None
    safety: SafetyInfo | None = None


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
    safety: SafetyInfo | None = None
    part: str | None = None
    """Extension: ``disclaimer`` or ``note`` for text the service appended after the model's."""


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
    prompt_format: str = "chat template"
    """``chat template``, or the study's Alpaca prompt for a model saved without one."""


class ModelList(BaseModel):
    """``GET /v1/models`` answer."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


