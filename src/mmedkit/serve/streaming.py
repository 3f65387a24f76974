"""Server-sent events: one event's text, a deadline on a stream of pieces, and a stream that frees its slot."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send

from mmedkit.serve.queue import Ticket
from mmedkit.serve.schemas import clean_text


def sse(obj: BaseModel | dict[str, Any] | str) -> str:
    """One server-sent event; ``None`` extension fields (``safety``, ``part``) are left out, lone surrogates
    replaced (they cannot be sent as UTF-8)."""
    if isinstance(obj, str):
        return f"data: {obj}\n\n"
    data = obj if isinstance(obj, dict) else obj.model_dump(mode="json")
    for key in ("safety", "part"):
        if data.get(key) is None:
            data.pop(key, None)
    return f"data: {clean_text(json.dumps(data, ensure_ascii=False))}\n\n"


def event_stream(events: AsyncIterator[str]) -> StreamingResponse:
    """An SSE response of ``events``."""
    return StreamingResponse(events, media_type="text/event-stream")


async def with_deadline(items: AsyncIterator[str], deadline: float) -> AsyncIterator[str]:
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


class SlotStream(StreamingResponse):
    """A streamed answer that frees its queue slot however the response ends (done, error, client gone)."""

    def __init__(self, content: AsyncIterator[str], ticket: Ticket) -> None:
        super().__init__(content, media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})
        self.ticket = ticket

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.ticket.release()
