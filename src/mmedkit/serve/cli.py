"""``mmed serve``: the family-doctor chat page and its OpenAI-compatible API.

The Typer app ``app`` has one default command, so it mounts as ``mmed serve`` and also runs as
``python -m mmedkit.serve``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # the service (FastAPI, torch) is imported only when `mmed serve` runs
    from fastapi import FastAPI

    from mmedkit.serve.settings import ServeConfig

app = typer.Typer(help="Serve the family-doctor chat page and an OpenAI-compatible API (safety layer on).",
                  pretty_exceptions_show_locals=False)
log = logging.getLogger("mmedkit.serve")


def env_value(name: str | None, option: str) -> str | None:
    """The value of environment variable ``name`` (None when no name is given); a bad ``option`` when unset."""
    if not name:
        return None
    value = os.environ.get(name)
    if not value:
        raise typer.BadParameter(f"environment variable {name} is not set or empty", param_hint=option)
    return value


def build_app(*, model: str | None = None, adapter: str | None = None, upstream: str | None = None,
              upstream_model: str | None = None, upstream_api_key: str | None = None, upstream_slots: int = 4,
              device: str | None = None, dtype: str = "auto", model_id: str | None = None,
              safety_data: Path | None = None, config: ServeConfig | None = None) -> FastAPI:
    """The service over a local model (``model``, default: the embedded SmolLM2) or ``upstream``."""
    from mmedkit.models.base import BackendError
    from mmedkit.serve.app import create_app
    from mmedkit.serve.backends import ChatBackend, LocalBackend, model_notice
    from mmedkit.serve.safety import SafetyPolicy
    from mmedkit.serve.settings import ServeConfig

    if model and upstream:
        raise BackendError("give either --model (a local model) or --upstream (a server), not both")
    if adapter and upstream:
        raise BackendError("--adapter applies to a local model; load it in the upstream server instead")
    policy = SafetyPolicy.load(safety_data)
    backend: ChatBackend
    if upstream:
        from mmedkit.serve.upstream import UpstreamBackend, check_upstream, discover_model

        name = upstream_model or discover_model(upstream, upstream_api_key)
        log.info("%s", check_upstream(upstream, name, upstream_api_key).verdict())  # stops a misconfigured one
        backend = UpstreamBackend(upstream, name, api_key=upstream_api_key, slots=upstream_slots)
    else:
        from mmedkit.models.hf import HFModel
        from mmedkit.serve.engine import LocalEngine

        if not model:
            from mmedkit.models.embedded import default_model_dir

            model = str(default_model_dir())
        lm = HFModel(model, dtype=dtype, device=device, adapter=adapter)
        backend = LocalBackend(LocalEngine(lm), model_id or Path(model).name or model, notice=model_notice(model))
    return create_app(backend, config or ServeConfig(), policy)


@app.callback(invoke_without_command=True)
def serve(
    model: Annotated[str | None, typer.Option(help="Local model folder or hub id (default: the embedded "
                                                   "SmolLM2-135M-Instruct).")] = None,
    adapter: Annotated[str | None, typer.Option(help="PEFT (LoRA) adapter folder for --model.")] = None,
    upstream: Annotated[str | None, typer.Option(help="Base URL of an OpenAI-compatible server (vLLM, llama.cpp, "
                                                      "Ollama), e.g. http://127.0.0.1:8001/v1.")] = None,
    upstream_model: Annotated[str | None, typer.Option(help="Model name at the upstream (default: the first it "
                                                            "lists).")] = None,
    upstream_api_key_env: Annotated[str | None, typer.Option(help="Environment variable holding the upstream's "
                                                                  "API key.")] = None,
    upstream_slots: Annotated[int, typer.Option(help="Answers generated at once through the upstream.")] = 4,
    host: Annotated[str, typer.Option(help="Bind address (default: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    api_key_env: Annotated[str | None, typer.Option(help="Environment variable holding the API key clients "
                                                         "must send (default: none).")] = None,
    cors_origin: Annotated[list[str] | None, typer.Option(help="Origin allowed to call the API from a browser "
                                                               "(repeatable; default: none).")] = None,
    allowed_host: Annotated[list[str] | None, typer.Option(help="Accepted Host header (repeatable; default: "
                                                                "127.0.0.1 and localhost on loopback).")] = None,
    queue_size: Annotated[int, typer.Option(help="Requests that may wait for the model; more get 429.")] = 8,
    timeout: Annotated[float, typer.Option(help="Seconds per request, waiting and generating.")] = 120.0,
    max_tokens: Annotated[int, typer.Option(help="Most tokens one answer may ask for.")] = 512,
    default_max_tokens: Annotated[int, typer.Option(help="Tokens per answer when a request does not say.")] = 256,
    max_messages: Annotated[int, typer.Option(help="Most messages in one request.")] = 40,
    max_message_chars: Annotated[int, typer.Option(help="Most characters in one message.")] = 8000,
    max_body_kb: Annotated[int, typer.Option(help="Largest request body, KiB.")] = 64,
    log_conversations: Annotated[Path | None, typer.Option(help="Append every exchange to this JSONL file "
                                                                "(default: nothing is written).")] = None,
    safety_data: Annotated[Path | None, typer.Option(help="Folder with rules.yaml and <lang>.yaml to use instead "
                                                          "of the shipped red-flag data.")] = None,
    model_id: Annotated[str | None, typer.Option(help="Name to serve a local model under.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, mps (default: best available).")] = None,
    dtype: Annotated[str, typer.Option(help="auto | float32 | bfloat16 | float16")] = "auto",
    threads: Annotated[int, typer.Option(help="CPU threads for the local model (0: torch's default; 1 is "
                                              "steadier on a CPU shared with other work).")] = 0,
    log_level: Annotated[str, typer.Option(help="debug | info | warning | error")] = "info",
) -> None:
    """Start the chat service."""
    from mmedkit.clikit import handle_errors
    from mmedkit.serve.settings import ServeConfig, default_allowed_hosts, warn_if_open

    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    api_key = env_value(api_key_env, "--api-key-env")
    upstream_key = env_value(upstream_api_key_env, "--upstream-api-key-env")
    hosts = tuple(allowed_host) if allowed_host else default_allowed_hosts(host)
    if threads > 0 and not upstream:
        import torch

        torch.set_num_threads(threads)
    config = ServeConfig(api_key=api_key, cors_origins=tuple(cors_origin or ()), allowed_hosts=hosts,
                         max_body_bytes=max_body_kb * 1024, max_messages=max_messages,
                         max_message_chars=max_message_chars, max_tokens=max_tokens,
                         default_max_tokens=min(default_max_tokens, max_tokens), queue_size=queue_size,
                         request_timeout=timeout, conversation_log=log_conversations)
    with handle_errors():
        service = build_app(model=model, adapter=adapter, upstream=upstream, upstream_model=upstream_model,
                            upstream_api_key=upstream_key, upstream_slots=upstream_slots, device=device, dtype=dtype,
                            model_id=model_id, safety_data=safety_data, config=config)
    warn_if_open(log, host, api_key)
    if log_conversations:
        log.warning("conversations are written to %s", log_conversations)
    import uvicorn

    log.info("chat page at http://%s:%d/  API at http://%s:%d/v1", host, port, host, port)
    uvicorn.run(service, host=host, port=port, log_level=log_level.lower(), server_header=False,
                timeout_graceful_shutdown=5, limit_concurrency=4 * config.max_in_flight)
