"""A plain OpenAI-compatible HTTP server over a transformers model (:class:`HFModel`), for evaluation.

This is the service of :mod:`mmedkit.serve.app` without the safety layer and the chat page, plus
the legacy ``POST /v1/completions`` endpoint (:mod:`mmedkit.serve.routes.completions`): ``GET /v1/models``,
``GET /healthz``, ``POST /v1/chat/completions`` (token streaming via SSE) and ``POST /v1/completions``
(with optional SSE). ``/v1/completions`` supports ``echo`` + ``logprobs`` with ``max_tokens: 0``, so the
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

Run it as ``python -m mmedkit.serve.openai_api --model PATH [--host H] [--port P] [--api-key-env NAME]``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

import typer

from mmedkit.serve.settings import default_allowed_hosts, warn_if_open

if TYPE_CHECKING:  # torch and transformers load only when a model is served
    from fastapi import FastAPI

    from mmedkit.models.hf import HFModel

log = logging.getLogger(__name__)
cli = typer.Typer(help="Serve a transformers model over an OpenAI-compatible API.", add_completion=False,
                  pretty_exceptions_show_locals=False)


def create_app(model: HFModel, *, model_id: str | None = None, api_key: str | None = None,
               queue_size: int = 64, request_timeout: float = 600.0,
               allowed_hosts: tuple[str, ...] | None = default_allowed_hosts("127.0.0.1")) -> FastAPI:
    """An OpenAI-compatible FastAPI app serving ``model`` under ``model_id`` (default: its name).

    With ``api_key``, every ``/v1`` route requires ``Authorization: Bearer <api_key>``; ``allowed_hosts``
    are the accepted ``Host`` names (default: loopback names; None: any).
    """
    from mmedkit.serve.app import create_app as create_service
    from mmedkit.serve.backends import LocalBackend
    from mmedkit.serve.engine import LocalEngine
    from mmedkit.serve.routes import completions
    from mmedkit.serve.settings import ServeConfig

    config = ServeConfig(api_key=api_key, page=False, allowed_hosts=allowed_hosts, queue_size=queue_size,
                         request_timeout=request_timeout, max_tokens=model.max_length or 1 << 20, max_messages=10_000,
                         max_message_chars=1 << 22, max_body_bytes=1 << 24)
    app = create_service(LocalBackend(LocalEngine(model), model_id), config)
    app.include_router(completions.router)
    return app


@cli.command()
def serve(
    model: Annotated[str, typer.Option(help="local path or hub id of a causal LM")],
    model_id: Annotated[str | None, typer.Option(help="name to serve the model under (default: --model)")] = None,
    host: Annotated[str, typer.Option(help="bind address (default: 127.0.0.1, local only)")] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    api_key_env: Annotated[str | None, typer.Option(help="environment variable holding the API key clients must "
                                                         "send (default: no key)")] = None,
    dtype: Annotated[str, typer.Option(help="auto, float32, bfloat16 or float16")] = "auto",
    device: Annotated[str | None, typer.Option(help="cuda, cpu, mps (default: best available)")] = None,
    adapter: Annotated[str | None, typer.Option(help="PEFT adapter to load on top of the model")] = None,
    queue_size: Annotated[int, typer.Option(help="requests that may wait for the model")] = 64,
    trust_remote_code: Annotated[bool, typer.Option("--trust-remote-code")] = False,
    log_level: Annotated[str, typer.Option()] = "info",
) -> None:
    """Serve a transformers model over an OpenAI-compatible API."""
    from mmedkit.clikit import handle_errors
    from mmedkit.serve.cli import env_value

    api_key = env_value(api_key_env, "--api-key-env")
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    warn_if_open(log, host, api_key)
    with handle_errors():
        from mmedkit.models.hf import HFModel

        lm = HFModel(model, dtype=dtype, device=device, adapter=adapter, trust_remote_code=trust_remote_code)
        app = create_app(lm, model_id=model_id, api_key=api_key, queue_size=queue_size,
                         allowed_hosts=default_allowed_hosts(host))
    import uvicorn

    log.info("serving %s at http://%s:%d/v1", model_id or model, host, port)
    uvicorn.run(app, host=host, port=port, log_level=log_level.lower())


def main() -> None:
    """``python -m mmedkit.serve.openai_api``."""
    cli(prog_name="python -m mmedkit.serve.openai_api")


if __name__ == "__main__":
    main()
