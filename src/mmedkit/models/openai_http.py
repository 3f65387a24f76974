"""HTTP building blocks shared by the OpenAI-compatible clients: error text, ``Retry-After``, which failures
are worth retrying, and a tally of what happened to every request of a run.

Only failures that a retry can fix are retried: HTTP 429 and 503 (the server is busy or starting) and a
connection that could not be made or was reset. A request that timed out is never retried: a server that
takes longer than the timeout for one request (for instance because it treats ``max_tokens: 0`` as "no
limit" and generates to the end of its context) would only do it again.
"""

from __future__ import annotations

import email.utils
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from mmedkit.models.base import BackendError

RETRY_STATUSES = frozenset({429, 503})
MAX_RETRY_AFTER = 600.0
_CONNECTION_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadError, httpx.WriteError,
                      httpx.RemoteProtocolError)


class StatusError(BackendError):
    """The server answered with an HTTP error status that retrying does not fix."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Transient(Exception):
    """A failure worth retrying (429, 503, connection refused or reset), with the server's Retry-After."""

    def __init__(self, reason: str, kind: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.kind = kind
        self.retry_after = retry_after


def error_message(resp: httpx.Response) -> str:
    """The server's error message: OpenAI ``{"error": {"message"}}``, FastAPI ``{"detail"}``, or text."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text.strip()[:500] or resp.reason_phrase
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        for key in ("error", "detail", "message"):
            if body.get(key):
                return str(body[key])
    return str(body)[:500]


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), if present."""
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(when.timestamp() - time.time(), 0.0), MAX_RETRY_AFTER)


def redact(url: str) -> str:
    """``url`` with its ``user:password@`` (if any) shown as ``***@``: what logs, errors and reports show."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def scrub(text: str, url: str) -> str:
    """``text`` with every occurrence of ``url``'s credentials removed."""
    parts = urlsplit(url)
    secret = parts.netloc.rsplit("@", 1)[0] if "@" in parts.netloc else ""
    return text.replace(secret + "@", "***@") if secret else text


def timeout_message(url: str, seconds: float) -> str:
    """Why a request that timed out is not retried, and what to check."""
    return (f"{url} gave no answer within {seconds:g} s; not retried: a server that takes this long for one "
            "request (overloaded, or generating far more than asked, e.g. treating max_tokens 0 as no limit) "
            "would do it again. Check the server, or raise the timeout")


def classify(exc: httpx.HTTPError, url: str, timeout: float) -> Exception:
    """The error to raise for a transport failure: :class:`Transient` for a refused or reset connection,
    a final :class:`BackendError` for a timeout or anything else."""
    if isinstance(exc, _CONNECTION_ERRORS):
        return Transient(f"{type(exc).__name__}: {exc}".rstrip(": "), "connection")
    if isinstance(exc, httpx.TimeoutException):
        return BackendError(timeout_message(url, timeout))
    return BackendError(f"{url} failed: {type(exc).__name__}: {exc}".rstrip(": "))


def check_status(resp: httpx.Response, url: str) -> None:
    """Raise :class:`Transient` (429, 503) or :class:`StatusError` (any other error status)."""
    if resp.status_code < 400:
        return
    msg = error_message(resp)
    if resp.status_code in RETRY_STATUSES:
        raise Transient(f"HTTP {resp.status_code}: {msg}", f"HTTP {resp.status_code}",
                        retry_after_seconds(resp.headers.get("retry-after")))
    raise StatusError(f"HTTP {resp.status_code} from {url}: {msg}", resp.status_code)


class RequestTally:
    """What happened to the requests of a run: answered, retried (by reason), failed (by reason)."""

    def __init__(self) -> None:
        self.ok = 0
        self.stopped = 0
        """Requests cancelled unanswered: a deadline passed, or another request failed."""
        self.retries: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()

    def failed(self, exc: BaseException) -> None:
        """Count a request that failed for good, under a short reason."""
        text = str(exc).split("\n", 1)[0]
        self.failures[text if len(text) <= 160 else text[:157] + "..."] += 1

    def troubles(self) -> int:
        """Retries and failures so far."""
        return sum(self.retries.values()) + sum(self.failures.values())

    def summary(self) -> str:
        """One line: ``12 requests: 11 answered, 1 failed (...); 3 retries (2x HTTP 503, 1x connection)``."""
        total = self.ok + self.stopped + sum(self.failures.values())
        parts = [f"{total} request(s): {self.ok} answered"]
        if self.stopped:
            parts[0] += f", {self.stopped} stopped unanswered (a deadline, or another request failed)"
        if self.failures:
            parts[0] += f", {sum(self.failures.values())} failed (" + "; ".join(
                f"{n}x {why}" for why, n in self.failures.most_common()) + ")"
        if self.retries:
            parts.append(f"{sum(self.retries.values())} retries (" + ", ".join(
                f"{n}x {why}" for why, n in self.retries.most_common()) + ")")
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        """The tally for results files."""
        return {"answered": self.ok, "stopped": self.stopped, "retries": dict(self.retries),
                "failures": dict(self.failures)}
