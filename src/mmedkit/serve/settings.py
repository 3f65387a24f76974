"""The service's limits and switches, and what binding to an address implies."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class ServeConfig:
    """Limits and switches of the service (the defaults suit the public demo on one CPU)."""

    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] | None = None
    """Accepted ``Host`` header names (None: any); :func:`default_allowed_hosts` gives loopback names on loopback."""
    max_body_bytes: int = 64 * 1024
    body_timeout: float = 10.0
    """Seconds a client has to send its whole request body; then 408 (slow senders hold connections)."""
    max_in_flight: int = 256
    """Requests in progress at once (reading, waiting, answering); more get 429 (``/healthz`` always answers)."""
    max_messages: int = 40
    max_message_chars: int = 8000
    max_tokens: int = 512
    """Most tokens one answer may ask for."""
    default_max_tokens: int = 256
    queue_size: int = 8
    """Requests that may wait while the backend's slots are busy; more get 429."""
    request_timeout: float = 120.0
    """Seconds from arrival to the answer's end (waiting included); then 503 / an error event."""
    safety_timeout: float = 5.0
    """Seconds the red-flag screen may take (off the event loop); then 503: no answer goes out unscreened."""
    conversation_log: Path | None = None
    page: bool = True
    served_name: str | None = None


def default_allowed_hosts(host: str) -> tuple[str, ...] | None:
    """``Host`` names to accept when binding ``host``: loopback names on loopback (IPv6 too), else any."""
    return ("127.0.0.1", "localhost", "[::1]") if host in LOOPBACK else None


def warn_if_open(log: logging.Logger, host: str, api_key: str | None) -> None:
    """Warn when ``host`` is reachable from other machines and no API key guards the model."""
    if host not in LOOPBACK and not api_key:
        log.warning("serving on %s without an API key: anyone who can reach it can use the model", host)
