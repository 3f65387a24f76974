"""A plain OpenAI-compatible HTTP server over a transformers model (:class:`HFModel`), for evaluation.

This is the service of :mod:`mmedkit.serve.app` without the safety layer and the chat page, plus
the legacy ``POST /v1/completions`` endpoint: ``GET /v1/models``, ``GET /healthz``,
``POST /v1/chat/completions`` (token streaming via SSE) and ``POST /v1/completions`` (with
optional SSE). ``/v1/completions`` supports ``echo`` + ``logprobs`` with ``max_tokens: 0``, so the
``openai`` backend can score answers against it exactly as it would against vLLM. It also serves
as the upstream of ``mmed serve --upstream`` in tests, the way vLLM would in production.

Behaviour worth knowing:

* model calls go through one admission queue and run one at a time; up to ``--queue-size``
  requests wait, more get 429 with ``Retry-After``;
* ``logprobs`` are real log-probabilities of every returned token (prompt tokens and generated
  tokens alike: the generated text is re-scored together with the prompt); the first token of
  a prompt has ``null``, as with OpenAI; ``top_logprobs`` is always ``null``;
* ``text_offset`` counts characters of prompt + completion, also when ``echo`` is false;
* a text prompt that already starts with the tokenizer's BOS text (a chat template rendered by
  the client) is not given a second BOS;
* the request's ``model`` field is not checked: every request goes to the one loaded model;
* ``temperature`` defaults to 1 (sampling), as in the OpenAI API; send 0 for greedy decoding;
* client ``system`` messages are used as given (no safety layer here).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import time
import uuid
from collections.abc import AsyncIterator, Sequence

from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from mmedkit.models.base import BackendError
from mmedkit.models.hf import HFModel
from mmedkit.serve.app import ServeConfig, sse
from mmedkit.serve.app import create_app as create_service
from mmedkit.serve.backends import LocalBackend
from mmedkit.serve.engine import LocalEngine
from mmedkit.serve.schemas import CompletionChoice, CompletionRequest, CompletionResponse, Usage

log = logging.getLogger(__name__)


def _pieces(text: str, n: int = 4) -> list[str]:
    """``text`` cut into about ``n`` chunks for streaming."""
    if not text:
        return []
    size = max(1, math.ceil(len(text) / n))
    return [text[i:i + size] for i in range(0, len(text), size)]


def _stops(stop: str | list[str] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    return (stop,) if isinstance(stop, str) else tuple(s for s in stop if s)


def create_app(model: HFModel, *, model_id: str | None = None, api_key: str | None = None,
               queue_size: int = 64, request_timeout: float = 600.0) -> FastAPI:
    """An OpenAI-compatible FastAPI app serving ``model`` under ``model_id`` (default: its name).

    With ``api_key``, every ``/v1`` route requires ``Authorization: Bearer <api_key>``.
    """
    engine = LocalEngine(model)
    backend = LocalBackend(engine, model_id)
    config = ServeConfig(api_key=api_key, page=False, queue_size=queue_size, request_timeout=request_timeout,
                         max_tokens=model.max_length or 1 << 20, max_messages=10_000,
                         max_message_chars=1 << 22, max_body_bytes=1 << 24)
    app = create_service(backend, config)
    served = backend.model_id

    @app.post("/v1/completions", dependencies=app.state.auth, response_model=None)
    async def completions(req: CompletionRequest) -> CompletionResponse | StreamingResponse:
        if req.n != 1:
            raise HTTPException(400, "only n=1 is supported")
        if req.stream and req.logprobs is not None:
            raise HTTPException(400, "logprobs are not supported with stream=true")
        prompts: Sequence[str] = [req.prompt] if isinstance(req.prompt, str) else req.prompt
        max_tokens = 16 if req.max_tokens is None else req.max_tokens
        choices: list[CompletionChoice] = []
        n_prompt = n_gen = 0
        ticket = await app.state.admit(asyncio.get_running_loop().time() + request_timeout)
        try:
            for i, prompt in enumerate(prompts):
                text, lp, p, g = await run_in_threadpool(engine.complete, prompt, max_tokens, _stops(req.stop),
                                                         req.temperature, req.logprobs is not None, req.echo)
                finish = "length" if g >= max_tokens else "stop"
                choices.append(CompletionChoice(index=i, text=text, logprobs=lp, finish_reason=finish))
                n_prompt, n_gen = n_prompt + p, n_gen + g
        finally:
            ticket.release()
        app.state.counters["generations"] += 1
        usage = Usage(prompt_tokens=n_prompt, completion_tokens=n_gen, total_tokens=n_prompt + n_gen)
        rid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        if not req.stream:
            return CompletionResponse(id=rid, created=created, model=served, choices=choices, usage=usage)

        def chunk(index: int, text: str, finish_reason: str | None = None) -> str:
            choice = CompletionChoice(index=index, text=text, finish_reason=finish_reason)
            return sse(CompletionResponse(id=rid, created=created, model=served, choices=[choice]))

        async def events() -> AsyncIterator[str]:
            for c in choices:
                for piece in _pieces(c.text):
                    yield chunk(c.index, piece)
                yield chunk(c.index, "", c.finish_reason)
            if req.stream_options and req.stream_options.include_usage:
                yield sse(CompletionResponse(id=rid, created=created, model=served, choices=[], usage=usage))
            yield sse("[DONE]")

        return StreamingResponse(events(), media_type="text/event-stream")

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
    parser.add_argument("--queue-size", type=int, default=64, help="requests that may wait for the model")
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
    app = create_app(model, model_id=args.model_id, api_key=api_key, queue_size=args.queue_size)
    log.info("serving %s at http://%s:%d/v1", args.model_id or args.model, args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level.lower())


if __name__ == "__main__":
    main()
