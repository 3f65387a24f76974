"""Probe an OpenAI-compatible server before a run: one short request per capability the run needs.

Servers that all call themselves OpenAI-compatible differ exactly where scoring depends on them (vLLM,
llama.cpp's Python and native servers, Ollama, TGI, hosted APIs). Each check sends one small request
with its own deadline, so a server that cannot do what the run needs is reported within seconds, with
what is missing and what to do, instead of after hours of timed-out requests.

Capabilities (``needs``):

* ``completions`` — ``POST /completions`` answers a text prompt with at most one token;
* ``chat`` — ``POST /chat/completions`` answers (the server has a chat template for the model);
* ``stream`` — ``/chat/completions`` with ``stream: true`` sends server-sent events;
* ``logprobs`` — scoring by echo: first whether ``max_tokens: 0`` is honoured, rejected or read as "no
  limit" (streamed, so a server that generates is cut off at once), which picks 0 or 1 new token;
  then the prompt's log-probabilities with ``echo: true``: present, covering the prompt's text, and
  aligned with its tokens. Alignment is tested without knowing the model: the log-probability the
  server gives the greedy next token ``g`` of a prompt ``P`` when generating it must equal the one it
  echoes for ``g`` as part of the prompt ``P + g``. A server that gives each echoed token the score
  of the token after it (llama-cpp-python for models without a BOS token) fails this check.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from mmedkit.models.base import BackendError
from mmedkit.models.openai_http import error_message, redact, scrub

NEEDS = ("completions", "chat", "stream", "logprobs")
PROBE_TIMEOUT = 30.0
"""Seconds each check may take (a cold CPU server needs several seconds for its first prompt)."""
PROBE_PROMPT = "Fever, cough and shortness of breath are common symptoms of"
PROBE_CHAT = [{"role": "user", "content": "Name one symptom of influenza."}]
ALIGN_ABS_TOL = 0.05
ALIGN_REL_TOL = 0.05
"""Echoed and generated log-probabilities of the same token agree within 0.05 + 5% (batch shapes and
precision differ between the two requests; a shifted score differs by far more on a trained model)."""
NO_PROMPT_LOGPROBS = ("use --mode generate, or a server that returns prompt log-probabilities, e.g. vLLM "
                      "(see the README's table of servers)")


Echoed = list[tuple[str, int, float | None]]


def echo_tokens(logprobs: Any, prompt: str) -> Echoed | None:
    """``(token, text offset, log-probability)`` of an echoed completion (None when it has no log-probabilities).

    A leading token that the offsets count but ``prompt`` does not start with (a BOS such as
    ``<|begin_of_text|>``, which vLLM echoes) is dropped and the offsets are shifted back by its length,
    so offsets are positions in ``prompt``."""
    offsets = logprobs.get("text_offset") if isinstance(logprobs, dict) else None
    values = logprobs.get("token_logprobs") if isinstance(logprobs, dict) else None
    if not offsets or not values:
        return None
    tokens = logprobs.get("tokens") or [""] * len(offsets)
    rows = list(zip(tokens, offsets, values, strict=False))
    first = rows[0][0] or ""
    if len(rows) > 1 and rows[0][1] == 0 and first and rows[1][1] == len(first) and not prompt.startswith(first):
        rows = [(t, o - len(first), v) for t, o, v in rows[1:]]
    return rows


class CheckFailed(Exception):
    """One check failed: ``detail`` says what the server did, ``advice`` what to do."""

    def __init__(self, detail: str, advice: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.advice = advice


class Unreachable(CheckFailed):
    """The server could not be reached at all: no later check can tell anything."""


@dataclass
class Check:
    """The outcome of one check."""

    name: str
    ok: bool
    detail: str
    seconds: float
    advice: str = ""


@dataclass
class ProbeReport:
    """Every check of one probe and the scoring method it chose."""

    base_url: str
    model: str
    checks: list[Check] = field(default_factory=list)
    score_tokens: int | None = None
    """New tokens to ask for when scoring by echo: 0, or 1 (then dropped); None when not probed."""

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return all(c.ok for c in self.checks)

    def lines(self) -> list[str]:
        """One line per check: ``ok|FAIL name (seconds): detail``."""
        return [f"{'ok' if c.ok else 'FAIL'} {c.name} ({c.seconds:.1f} s): {c.detail}" for c in self.checks]

    def verdict(self) -> str:
        """The report as text: the server, each check, and what to do about the failures."""
        head = f"probe of {redact(self.base_url)} (model {self.model!r})"
        advice = list(dict.fromkeys(c.advice for c in self.checks if not c.ok and c.advice))
        return "\n".join([head, *(f"  {line}" for line in self.lines()), *(f"what to do: {a}" for a in advice)])

    def raise_for_failures(self) -> None:
        """Raise :class:`~mmedkit.models.base.BackendError` with the verdict when a check failed."""
        if not self.ok:
            raise BackendError(f"the server cannot do what this run needs; {self.verdict()}")

    def as_dict(self) -> dict[str, Any]:
        """The report for results files."""
        return {"base_url": redact(self.base_url), "score_tokens": self.score_tokens,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail, "seconds": round(c.seconds, 3)}
                           for c in self.checks]}


class Prober:
    """Runs the checks against ``base_url`` (``.../v1``) for ``model``, each within ``timeout`` seconds."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, timeout: float = PROBE_TIMEOUT,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = timeout
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(headers=headers, transport=transport,
                                    timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))

    def run(self, needs: Iterable[str]) -> ProbeReport:
        """Check each capability in ``needs`` (see :data:`NEEDS`); stop early when the server is unreachable."""
        wanted = list(dict.fromkeys(needs))
        unknown = [n for n in wanted if n not in NEEDS]
        if unknown:
            raise ValueError(f"unknown capabilities {unknown}; expected some of {', '.join(NEEDS)}")
        report = ProbeReport(self.base_url, self.model)
        steps: dict[str, list[tuple[str, Callable[[ProbeReport], str]]]] = {
            "completions": [("completions", self._completions)],
            "chat": [("chat", self._chat)],
            "stream": [("stream", self._stream)],
            "logprobs": [("max_tokens", self._max_tokens_zero), ("prompt_logprobs", self._prompt_logprobs)],
        }
        try:
            for need in wanted:
                for name, step in steps[need]:
                    start = time.monotonic()
                    try:
                        detail = step(report)
                        report.checks.append(Check(name, True, detail, time.monotonic() - start))
                    except CheckFailed as exc:
                        report.checks.append(Check(name, False, exc.detail, time.monotonic() - start, exc.advice))
                        if isinstance(exc, Unreachable):
                            return report
        finally:
            self._client.close()
        return report

    # ------------------------------------------------------------ requests
    def _fail_http(self, exc: httpx.HTTPError, path: str) -> CheckFailed:
        url = f"{self.base_url}/{path}"
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
            return CheckFailed(f"no answer within {self.timeout:g} s to a request for at most 1 token",
                               "check that the server has finished loading and is not overloaded")
        return Unreachable(scrub(f"{redact(url)} is unreachable: {type(exc).__name__}: {exc}", url),
                           "start the server, or pass the right base URL (it ends in /v1)")

    def _fail_status(self, resp: httpx.Response, path: str) -> CheckFailed:
        msg = f"HTTP {resp.status_code} from /{path}: {error_message(resp)}"
        if resp.status_code in (401, 403):
            return Unreachable(msg, "pass the server's API key (--api-key-env names the variable holding it)")
        if resp.status_code == 404:
            return CheckFailed(msg, f"the server has no /{path} endpoint, or does not serve model {self.model!r}: "
                                    "check the model name (GET /v1/models lists them)")
        return CheckFailed(msg)

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            resp = self._client.post(f"{self.base_url}/{path}", json={"model": self.model, **payload})
        except httpx.HTTPError as exc:
            raise self._fail_http(exc, path) from None
        if resp.status_code >= 400:
            raise self._fail_status(resp, path)
        try:
            body = resp.json()
            choice = body["choices"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            raise CheckFailed(f"/{path} answered without choices: {resp.text[:200]!r}") from None
        if not isinstance(choice, dict):
            raise CheckFailed(f"/{path} answered an unexpected choice: {str(choice)[:200]}")
        return {"choice": choice, "usage": body.get("usage") or {}}

    def _stream_events(self, path: str, payload: dict[str, Any], stop: Callable[[dict[str, Any]], bool]) -> str:
        """Read ``path``'s event stream until ``[DONE]``, the end, or ``stop(event)``; return how it ended:
        ``done``, ``stopped`` or ``json`` (the server answered with one JSON body instead of a stream)."""
        deadline = time.monotonic() + self.timeout
        try:
            with self._client.stream("POST", f"{self.base_url}/{path}", json={"model": self.model, **payload}) as r:
                if r.status_code >= 400:
                    r.read()
                    raise self._fail_status(r, path)
                if not r.headers.get("content-type", "").startswith("text/event-stream"):
                    return "json"
                for line in r.iter_lines():
                    if time.monotonic() > deadline:
                        raise CheckFailed(f"the stream did not end within {self.timeout:g} s for at most 2 tokens",
                                          "the server ignores max_tokens when streaming, or is overloaded")
                    data = line[len("data:"):].strip() if line.startswith("data:") else ""
                    if data == "[DONE]":
                        return "done"
                    if data:
                        try:
                            event = json.loads(data)
                        except ValueError:
                            raise CheckFailed(f"the stream sent invalid JSON: {data[:200]!r}") from None
                        if isinstance(event, dict) and stop(event):
                            return "stopped"
                return "done"
        except httpx.HTTPError as exc:
            raise self._fail_http(exc, path) from None

    # ------------------------------------------------------------ checks
    def _completions(self, report: ProbeReport) -> str:
        out = self._post("completions", {"prompt": PROBE_PROMPT, "max_tokens": 1, "temperature": 0})
        if not isinstance(out["choice"].get("text"), str):
            raise CheckFailed("/completions answered without text", "use --format chat")
        return f"answered {_tokens(out)} token(s)"

    def _chat(self, report: ProbeReport) -> str:
        try:
            out = self._post("chat/completions", {"messages": PROBE_CHAT, "max_tokens": 1, "temperature": 0})
        except CheckFailed as exc:
            if "template" in exc.detail.lower():
                exc.advice = ("the server has no chat template for this model: start it with one (vLLM: "
                              "--chat-template FILE; llama.cpp: --chat_format / --jinja) or use --format study")
            raise
        message = out["choice"].get("message")
        if not isinstance(message, dict) or not isinstance(message.get("content", ""), str | None):
            raise CheckFailed(f"/chat/completions answered without a message: {str(out['choice'])[:200]}")
        return f"answered {_tokens(out)} token(s) with the server's chat template"

    def _stream(self, report: ProbeReport) -> str:
        chunks: list[dict[str, Any]] = []

        def keep(event: dict[str, Any]) -> bool:
            chunks.append(event)
            return False

        how = self._stream_events("chat/completions", {"messages": PROBE_CHAT, "max_tokens": 2, "temperature": 0,
                                                       "stream": True}, keep)
        if how == "json" or not chunks:
            raise CheckFailed("/chat/completions with stream: true sent no server-sent events",
                              "mmed serve --upstream relays answers as they are generated: use a server that "
                              "streams (vLLM, llama.cpp, Ollama, TGI all do)")
        return f"{len(chunks)} event(s), then {'[DONE]' if how == 'done' else 'the end'}"

    def _max_tokens_zero(self, report: ProbeReport) -> str:
        """Whether ``max_tokens: 0`` means "nothing": streamed, so a server that generates anyway is cut off."""
        def generated(event: dict[str, Any]) -> bool:
            return any((c or {}).get("text") for c in event.get("choices") or [] if isinstance(c, dict))

        try:
            how = self._stream_events("completions", {"prompt": PROBE_PROMPT, "max_tokens": 0, "temperature": 0,
                                                      "stream": True}, generated)
        except CheckFailed as exc:
            if isinstance(exc, Unreachable):
                raise
            report.score_tokens = 1
            return f"max_tokens 0 is not accepted ({exc.detail}): scoring asks for 1 new token and drops it"
        if how == "stopped":
            report.score_tokens = 1
            return ("max_tokens 0 means no limit here (the server generated text): scoring asks for 1 new token "
                    "and drops it")
        if how == "json":
            report.score_tokens = 1
            return "streaming /completions is not supported, so max_tokens 0 is not trusted: scoring asks for 1"
        report.score_tokens = 0
        return "max_tokens 0 is honoured: scoring generates nothing"

    def _prompt_logprobs(self, report: ProbeReport) -> str:
        gen = self._post("completions", {"prompt": PROBE_PROMPT, "max_tokens": 1, "temperature": 0, "logprobs": 1})
        glp = gen["choice"].get("logprobs")
        if not isinstance(glp, dict):
            raise CheckFailed("/completions returns no log-probabilities at all", NO_PROMPT_LOGPROBS)
        g = (glp.get("tokens") or [""])[0] or ""  # empty when the model ended at once
        g_lp = (glp.get("token_logprobs") or [None])[0]
        prompt = PROBE_PROMPT + g
        n_new = report.score_tokens if report.score_tokens is not None else 1
        echo = self._post("completions", {"prompt": prompt, "max_tokens": n_new, "temperature": 0, "logprobs": 1,
                                          "echo": True})
        rows = echo_tokens(echo["choice"].get("logprobs"), prompt)
        if rows is None:
            raise CheckFailed("echo + logprobs on /completions returns no prompt log-probabilities", NO_PROMPT_LOGPROBS)
        echoed = [r for r in rows if r[1] < len(prompt)]
        extra = len(rows) - len(echoed)
        if len(echoed) < 2:
            raise CheckFailed("echo + logprobs returns log-probabilities of generated tokens only, not of the prompt",
                              NO_PROMPT_LOGPROBS)
        if extra > n_new or _tokens(echo) > max(n_new, 1):
            raise CheckFailed(f"asked for {n_new} new token(s), the server generated {max(extra, _tokens(echo))}",
                              "the server does not honour max_tokens; " + NO_PROMPT_LOGPROBS)
        text = "".join(t for t, _, _ in echoed)
        if text != prompt or any(b[1] < a[1] for a, b in zip(echoed, echoed[1:], strict=False)):
            raise CheckFailed(f"the echoed tokens do not spell the prompt (got {text[:80]!r}, offsets "
                              f"{[o for _, o, _ in echoed[:8]]}...)",
                              "its text offsets cannot be trusted; " + NO_PROMPT_LOGPROBS)
        at_g = [v for t, o, v in echoed if o == len(PROBE_PROMPT) and t == g]
        if not g or g_lp is None or not at_g or at_g[0] is None:
            return (f"{len(echoed)} prompt tokens echoed with log-probabilities; alignment not verifiable "
                    f"(greedy token {g!r} is not a token of the echoed prompt)")
        diff = abs(float(at_g[0]) - float(g_lp))
        if diff > ALIGN_ABS_TOL + ALIGN_REL_TOL * abs(float(g_lp)):
            raise CheckFailed(
                f"the echoed prompt log-probabilities are not aligned with the prompt's tokens: token {g!r} scores "
                f"{float(g_lp):.3f} when generated but {float(at_g[0]):.3f} when echoed (a server that gives each "
                "token the score of the token after it, e.g. llama-cpp-python for a model without a BOS token), so "
                "every score would be wrong", NO_PROMPT_LOGPROBS)
        return (f"{len(echoed)} prompt tokens echoed, aligned with the context (token {g!r}: {float(g_lp):.3f} "
                f"generated, {float(at_g[0]):.3f} echoed)")


def _tokens(out: dict[str, Any]) -> int:
    """Completion tokens the server says it generated (0 when it does not say)."""
    n = out["usage"].get("completion_tokens")
    return int(n) if isinstance(n, int) else 0


def probe(base_url: str, model: str, needs: Iterable[str], *, api_key: str | None = None,
          timeout: float = PROBE_TIMEOUT) -> ProbeReport:
    """Probe ``base_url`` for the capabilities in ``needs`` (see :class:`Prober`)."""
    return Prober(base_url, model, api_key=api_key, timeout=timeout).run(needs)
