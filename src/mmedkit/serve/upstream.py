"""Answers from an upstream OpenAI-compatible server (vLLM, llama.cpp server, Ollama, TGI, another
``mmed serve``): the way to put the chat page and its safety layer in front of a GPU server.

At start-up :func:`check_upstream` probes the upstream (chat template, streaming; see
:mod:`mmedkit.models.openai_probe`), so a misconfigured upstream is reported before the first user
waits. Every answer is requested with ``stream: true`` and relayed as it arrives; the upstream's own
errors come back as :class:`UpstreamError` with its status and message.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from mmedkit.models.base import BackendError, Message
from mmedkit.models.openai_http import error_message, redact, retry_after_seconds, scrub
from mmedkit.models.openai_probe import PROBE_TIMEOUT, ProbeReport, probe
from mmedkit.serve.backends import ChatBackend
from mmedkit.serve.engine import GenerationStats, GenParams
from mmedkit.serve.schemas import clean_text


class UpstreamError(BackendError):
    """The upstream server failed or refused; ``status`` is its HTTP status (502 when unreachable)."""

    def __init__(self, message: str, status: int = 502, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def discover_model(base_url: str, api_key: str | None = None, timeout: float = 10.0) -> str:
    """The first model the upstream lists at ``GET /models``."""
    url = f"{base_url.rstrip('/')}/models"
    shown = redact(url)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        resp = httpx.get(url, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise UpstreamError(scrub(f"upstream {shown} is unreachable: {exc}", url)) from None
    if resp.status_code >= 400:
        raise UpstreamError(f"upstream {shown} answered HTTP {resp.status_code}: {error_message(resp)}",
                            resp.status_code)
    try:
        data = resp.json()["data"]
        return str(data[0]["id"])
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise UpstreamError(f"upstream {shown} lists no model; pass --upstream-model") from exc


def check_upstream(base_url: str, model: str, api_key: str | None = None,
                   timeout: float = PROBE_TIMEOUT) -> ProbeReport:
    """Probe the upstream for what the chat service needs (``chat``, ``stream``), each check within
    ``timeout`` seconds; raise :class:`UpstreamError` with the verdict when one fails."""
    report = probe(base_url, model, ("chat", "stream"), api_key=api_key, timeout=timeout)
    if not report.ok:
        raise UpstreamError(f"the upstream cannot serve the chat service; {report.verdict()}")
    return report


class UpstreamBackend(ChatBackend):
    """Relays chat requests to ``{base_url}/chat/completions`` with streaming."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, slots: int = 4,
                 timeout: float = 300.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        """``transport`` replaces the network (e.g. ``httpx.ASGITransport`` over an app in the same process)."""
        self.base_url = base_url.rstrip("/")
        self.model_id = model
        self.slots = max(1, slots)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        limits = httpx.Limits(max_connections=self.slots, max_keepalive_connections=self.slots)
        self._client = httpx.AsyncClient(headers=headers, limits=limits, transport=transport,
                                         timeout=httpx.Timeout(timeout, connect=10.0))

    async def stream(self, messages: list[Message], params: GenParams, stats: GenerationStats) -> AsyncIterator[str]:
        url = f"{self.base_url}/chat/completions"
        payload: dict[str, Any] = {"model": self.model_id, "messages": messages, "max_tokens": params.max_tokens,
                                   "temperature": params.temperature, "stream": True,
                                   "stream_options": {"include_usage": True}}
        if params.stop:
            payload["stop"] = list(params.stop)
        try:
            async with self._client.stream("POST", url, json=payload) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    raise UpstreamError(f"upstream answered HTTP {resp.status_code}: {error_message(resp)}",
                                        resp.status_code, retry_after_seconds(resp.headers.get("retry-after")))
                async for line in resp.aiter_lines():
                    for piece in self._parse(line, stats):
                        yield piece
        except httpx.HTTPError as exc:
            message = f"upstream {redact(url)} failed: {type(exc).__name__}: {exc}".rstrip(": ")
            raise UpstreamError(scrub(message, url)) from None

    def _parse(self, line: str, stats: GenerationStats) -> list[str]:
        """Text pieces of one SSE line (``data: {...}``); other lines carry none."""
        if not line.startswith("data:"):
            return []
        data = line[len("data:"):].strip()
        if not data or data == "[DONE]":
            return []
        try:
            obj = json.loads(data)
        except ValueError as exc:
            raise UpstreamError(f"upstream sent invalid JSON in its stream: {data[:200]!r}") from exc
        if not isinstance(obj, dict):
            raise UpstreamError(f"upstream sent an unexpected event: {data[:200]!r}")
        if obj.get("error"):
            err = obj["error"]
            raise UpstreamError(f"upstream error: {err.get('message') if isinstance(err, dict) else err}")
        usage = obj.get("usage")
        if isinstance(usage, dict):
            stats.prompt_tokens = usage.get("prompt_tokens")
            stats.completion_tokens = usage.get("completion_tokens")
        out = []
        for choice in obj.get("choices") or []:
            content = (choice.get("delta") or {}).get("content")
            if content:
                out.append(clean_text(str(content)))
            if choice.get("finish_reason"):
                stats.finish_reason = choice["finish_reason"]
        return out

    async def aclose(self) -> None:
        await self._client.aclose()

    def describe(self) -> dict[str, Any]:
        return {"model": self.model_id, "slots": self.slots, "backend": "upstream", "upstream": redact(self.base_url)}
