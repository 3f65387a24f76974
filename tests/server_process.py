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
from typing import Self

import httpx


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ChildServer:
    """A server command on 127.0.0.1 as a child process, logging to ``log_path``; ready when ``health_url``
    answers 200 (with ``headers``). Subclasses build the command."""

    name = "server"

    def __init__(self, cmd: Sequence[str], log_path: Path, *, port: int, health_url: str,
                 headers: dict[str, str] | None = None, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.port = port
        self.health_url = health_url
        self.headers = headers or {}
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(list(cmd), env={**os.environ, **(env or {})}, cwd=cwd, stdout=self._log,
                                     stderr=subprocess.STDOUT)

    def log_tail(self, n: int = 3000) -> str:
        """The end of the server's log."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-n:]

    def wait_ready(self, timeout: float = 90.0) -> Self:
        """Block until the health URL answers 200; raise RuntimeError with the log if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(self.health_url, headers=self.headers, timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not become healthy (exit code {self.proc.returncode}):\n{self.log_tail()}")

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

    def __enter__(self) -> Self:
        return self.wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ServerProcess(ChildServer):
    """``python -m MODULE ARGS --port P`` on 127.0.0.1, logging to ``log_path``.

    ``module`` is ``mmedkit.serve`` (the chat service) or ``mmedkit.serve.openai_api``.
    """

    def __init__(self, args: Sequence[str], log_path: Path, *, module: str = "mmedkit.serve",
                 env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.url = f"{self.base}/v1"
        cmd = [sys.executable, "-m", module, *args, "--port", str(port), "--log-level", "warning"]
        super().__init__(cmd, log_path, port=port, health_url=f"{self.base}/healthz",
                         env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}, cwd=cwd)

    def peak_rss_mb(self) -> float | None:
        """The server's peak resident memory so far (Linux ``VmHWM``), in MiB."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None
