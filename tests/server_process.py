"""Test harness: a server (``mmed serve`` or the plain OpenAI-compatible one) as a child process on loopback.

Used by the tests that need a real process (``from server_process import ServerProcess``; ``tests/`` is on
``sys.path`` through ``tests/conftest.py``) and by ``benchmarks/bench_serve.py``: start it on a free port,
wait until ``/healthz`` answers, read its peak memory, stop it, and show its log when it fails to start.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``python -m MODULE ARGS --port P`` on 127.0.0.1, logging to ``log_path``.

    ``module`` is ``mmedkit.serve`` (the chat service) or ``mmedkit.serve.openai_api``.
    """

    def __init__(self, args: Sequence[str], log_path: Path, *, module: str = "mmedkit.serve",
                 env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/v1"
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}
        cmd = [sys.executable, "-m", module, *args, "--port", str(self.port), "--log-level", "warning"]
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(cmd, env=full_env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT)

    def log_tail(self, n: int = 3000) -> str:
        """The end of the server's log."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-n:]

    def wait_ready(self, timeout: float = 90.0) -> ServerProcess:
        """Block until ``/healthz`` answers 200; raise RuntimeError with the log if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not become healthy (exit code {self.proc.returncode}):\n{self.log_tail()}")

    def peak_rss_mb(self) -> float | None:
        """The server's peak resident memory so far (Linux ``VmHWM``), in MiB."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

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

    def __enter__(self) -> ServerProcess:
        return self.wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.stop()
