"""``POST /v1/completions`` (legacy text completions, optionally streamed) over a local model.

``echo`` + ``logprobs`` with ``max_tokens: 0`` scores a text, so the ``openai`` backend can score answers
against this server exactly as it would against vLLM. Mounted by :mod:`mmedkit.serve.openai_api` only.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from mmedkit.serve.backends import LocalBackend
from mmedkit.serve.deps import AdmissionDep, ServiceDep, require_api_key
from mmedkit.serve.engine import LocalEngine
from mmedkit.serve.schemas import CompletionChoice, CompletionRequest, CompletionResponse, Usage
from mmedkit.serve.streaming import event_stream, sse

router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)])


async def local_engine(service: ServiceDep) -> LocalEngine:
    """The local model behind the service (this router is mounted over a :class:`LocalBackend` only)."""
    if not isinstance(service.backend, LocalBackend):
        raise TypeError("/v1/completions needs a local model")
    return service.backend.engine


EngineDep = Annotated[LocalEngine, Depends(local_engine)]


def pieces(text: str, n: int = 4) -> list[str]:
    """``text`` cut into about ``n`` chunks for streaming."""
    if not text:
        return []
    size = max(1, math.ceil(len(text) / n))
    return [text[i:i + size] for i in range(0, len(text), size)]


def stops(stop: str | list[str] | None) -> tuple[str, ...]:
    """The request's stop strings, empty ones left out."""
    if stop is None:
        return ()
    return (stop,) if isinstance(stop, str) else tuple(s for s in stop if s)


@router.post("/completions", response_model=None)
async def completions(req: CompletionRequest, service: ServiceDep, admission: AdmissionDep,
                      engine: EngineDep) -> CompletionResponse | StreamingResponse:
    if req.n != 1:
        raise HTTPException(400, "only n=1 is supported")
    if req.stream and req.logprobs is not None:
        raise HTTPException(400, "logprobs are not supported with stream=true")
    prompts: Sequence[str] = [req.prompt] if isinstance(req.prompt, str) else req.prompt
    max_tokens = 16 if req.max_tokens is None else req.max_tokens
    choices: list[CompletionChoice] = []
    n_prompt = n_gen = 0
    ticket = await admission.ticket()
    try:
        for i, prompt in enumerate(prompts):
            text, lp, p, g = await run_in_threadpool(engine.complete, prompt, max_tokens, stops(req.stop),
                                                     req.temperature, req.logprobs is not None, req.echo)
            finish = "length" if g >= max_tokens else "stop"
            choices.append(CompletionChoice(index=i, text=text, logprobs=lp, finish_reason=finish))
            n_prompt, n_gen = n_prompt + p, n_gen + g
    finally:
        ticket.release()
    service.counters.generations += 1
    usage = Usage(prompt_tokens=n_prompt, completion_tokens=n_gen, total_tokens=n_prompt + n_gen)
    rid, created, model = f"cmpl-{uuid.uuid4().hex}", int(time.time()), service.model
    if not req.stream:
        return CompletionResponse(id=rid, created=created, model=model, choices=choices, usage=usage)

    def chunk(index: int, text: str, finish_reason: str | None = None) -> str:
        choice = CompletionChoice(index=index, text=text, finish_reason=finish_reason)
        return sse(CompletionResponse(id=rid, created=created, model=model, choices=[choice]))

    async def events() -> AsyncIterator[str]:
        for c in choices:
            for piece in pieces(c.text):
                yield chunk(c.index, piece)
            yield chunk(c.index, "", c.finish_reason)
        if req.stream_options and req.stream_options.include_usage:
            yield sse(CompletionResponse(id=rid, created=created, model=model, choices=[], usage=usage))
        yield sse("[DONE]")

    return event_stream(events())
