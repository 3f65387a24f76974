"""Where chat answers come from: a local model, or an upstream OpenAI-compatible server.

A :class:`ChatBackend` streams the text of one answer as an async iterator and fills in a
:class:`GenerationStats` when it is done. ``slots`` is how many answers it should produce at
once (the admission queue in front of it uses it).
"""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from mmedkit.alpaca import FORMAT_NAME as ALPACA_FORMAT
from mmedkit.models.base import Message
from mmedkit.models.tiny import TINY_NOTICE
from mmedkit.serve.engine import GenerationStats, GenParams, LocalEngine


def model_notice(model: str) -> str | None:
    """A notice for the page when ``model`` is the tiny random test model (its README says so)."""
    readme = Path(model) / "README.md"
    try:
        return TINY_NOTICE if readme.is_file() and TINY_NOTICE in readme.read_text(encoding="utf-8") else None
    except OSError:
        return None


class ChatBackend(ABC):
    """Produces chat answers, streamed."""

    model_id: str
    notice: str | None = None
    slots: int = 1
    prompt_format: str = "chat template"
    """How chat messages reach the model (``/v1/models`` and the page say it)."""

    @abstractmethod
    def stream(self, messages: list[Message], params: GenParams, stats: GenerationStats) -> AsyncIterator[str]:
        """Yield the answer's text piece by piece; fill ``stats`` before finishing."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def describe(self) -> dict[str, Any]:
        """What ``/healthz`` shows about the backend."""
        return {"model": self.model_id, "slots": self.slots}


class LocalBackend(ChatBackend):
    """A local transformers model; generation runs in a worker thread, one answer at a time."""

    def __init__(self, engine: LocalEngine, model_id: str | None = None, notice: str | None = None) -> None:
        self.engine = engine
        self.model_id = model_id or engine.model.name
        self.notice = notice
        self.slots = 1
        if not getattr(engine.model.tokenizer, "chat_template", None):
            self.prompt_format = ALPACA_FORMAT

    async def stream(self, messages: list[Message], params: GenParams, stats: GenerationStats) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        cancel = threading.Event()

        def put(kind: str, value: Any) -> None:
            try:
                loop.call_soon_threadsafe(pieces.put_nowait, (kind, value))
            except RuntimeError:  # the event loop is gone (server shutting down)
                cancel.set()

        def work() -> None:
            try:
                result = self.engine.stream_chat(messages, params, lambda text: put("text", text), cancel)
            except BaseException as exc:  # handed to the event loop, raised there
                put("error", exc)
            else:
                put("done", result)

        worker = threading.Thread(target=work, name="mmedkit-generate", daemon=True)
        worker.start()
        try:
            while True:
                kind, value = await pieces.get()
                if kind == "text":
                    yield value
                elif kind == "error":
                    raise value
                else:
                    stats.prompt_tokens = value.prompt_tokens
                    stats.completion_tokens = value.completion_tokens
                    stats.finish_reason = value.finish_reason
                    return
        finally:
            cancel.set()  # client gone or deadline passed: the model stops after its current step,
            await asyncio.shield(asyncio.to_thread(worker.join))  # and only then is its queue slot free

    def describe(self) -> dict[str, Any]:
        info = self.engine.model.info()
        return {"model": self.model_id, "slots": self.slots, "backend": "local", "device": info.details["device"],
                "dtype": info.details["dtype"], "adapter": info.details["adapter"]}
