"""OpenAI-compatible HTTP backend: vLLM, llama.cpp server, Ollama, hosted APIs, ``mmed serve``.

Generation goes to ``/chat/completions`` (chat prompts) or ``/completions`` (text prompts).
Log-likelihood scoring uses the standard echo trick: ``/completions`` with
``prompt = context + continuation``, ``echo: true``, ``logprobs: 1`` and ``max_tokens: 0``; the
continuation's score is the sum of the echoed ``token_logprobs`` whose ``text_offset`` falls at or
after the end of the context. This needs a server that returns prompt log-probabilities (vLLM and
``mmed serve`` do; most hosted chat APIs do not). A token that straddles the context/continuation
boundary is not counted, so continuations should start at a token boundary (e.g. with a space).

The public methods are synchronous. Requests run concurrently (at most ``concurrency`` in flight)
on an event loop owned by this object and running in a background thread, so they work from any
thread, including one that already runs an event loop. Progress callbacks run in the calling thread.

Connection errors, timeouts, 429 and 5xx responses are retried (``max_retries`` times) with tenacity:
the wait is the server's ``Retry-After`` when it sends one (seconds or an HTTP date, at most 600 s),
else ``backoff`` seconds doubling per attempt (at most 60 s) plus up to ``backoff`` seconds of jitter.
The openai SDK's own retry logic was weighed and not used: it waits its own backoff on
``Retry-After: 0``, gives up on a ``Retry-After`` above 120 s, has a fixed 0.5-8 s backoff, and would
add a dependency to the eval extra that takes 0.46 s to import (tenacity: 0.03 s).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from mmedkit.models.base import (
    BackendError,
    GenerationRequest,
    LanguageModel,
    LoglikelihoodRequest,
    ModelInfo,
    Progress,
    Prompt,
    stop_at,
)

log = logging.getLogger(__name__)


DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
_MAX_DELAY = 60.0
_MAX_RETRY_AFTER = 600.0


class _StatusError(BackendError):
    """The server answered with a non-retryable HTTP error status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class _Transient(Exception):
    """A failure worth retrying (connection error, timeout, 429, 5xx), with the server's Retry-After."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
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
        return min(max(float(value), 0.0), _MAX_RETRY_AFTER)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(when.timestamp() - time.time(), 0.0), _MAX_RETRY_AFTER)


class OpenAIModel(LanguageModel):
    """A model behind any OpenAI-compatible HTTP API."""

    backend_name = "openai"

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 api_key_env: str = "OPENAI_API_KEY", concurrency: int = 8, timeout: float = 120.0,
                 max_retries: int = 5, backoff: float = 1.0, tokenizer: str | None = None) -> None:
        self.name = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self._api_key = api_key if api_key is not None else (os.environ.get(api_key_env) or None)
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.max_retries = max(0, max_retries)
        self.backoff = max(0.0, backoff)
        self.tokenizer_name = tokenizer
        self._tokenizer: Any = None
        self._min_score_tokens = 0  # becomes 1 once a server rejects max_tokens=0
        self._warned_boundary = False
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: httpx.AsyncClient | None = None
        self._sem: asyncio.Semaphore | None = None

    def __repr__(self) -> str:
        return f"OpenAIModel({self.name!r}, base_url={self.base_url!r})"

    # ------------------------------------------------------------ event loop
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="mmedkit-openai", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def _run(self, make: Callable[[Callable[[int], None]], Awaitable[Any]], progress: Progress) -> Any:
        """Run ``make(report)`` on the background loop; forward ``report(n)`` calls to ``progress``
        in this thread and return the coroutine's result."""
        loop = self._ensure_loop()
        done: queue.SimpleQueue[int] = queue.SimpleQueue()

        async def main() -> Any:
            return await make(done.put)

        fut = asyncio.run_coroutine_threadsafe(main(), loop)
        fut.add_done_callback(lambda _: done.put(-1))  # wakes the loop below at once
        try:
            while True:
                try:
                    n = done.get(timeout=1.0)  # a timeout keeps Ctrl-C responsive
                except queue.Empty:
                    continue
                if n < 0:
                    return fut.result()
                if progress:
                    progress(n)
        except BaseException:
            fut.cancel()
            raise

    async def _get_client(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        if self._client is None or self._sem is None:
            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            n = self.concurrency
            limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
            self._client = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(self.timeout),
                                             limits=limits)
            self._sem = asyncio.Semaphore(self.concurrency)
        return self._client, self._sem

    @staticmethod
    async def _gather(coros: list[Awaitable[Any]]) -> list[Any]:
        """``asyncio.gather`` that cancels the remaining tasks as soon as one fails."""
        tasks = [asyncio.ensure_future(c) for c in coros]
        try:
            return await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    # ------------------------------------------------------------ HTTP
    def _retrying(self, url: str) -> AsyncRetrying:
        """The retry policy of one request (see the module docstring)."""
        backoff = wait_exponential(multiplier=self.backoff, max=_MAX_DELAY) + wait_random(0, self.backoff)

        def failure(state: RetryCallState) -> BaseException | None:
            return state.outcome.exception() if state.outcome else None

        def wait(state: RetryCallState) -> float:
            retry_after = getattr(failure(state), "retry_after", None)
            return backoff(state) if retry_after is None else retry_after

        def before_sleep(state: RetryCallState) -> None:
            delay = state.next_action.sleep if state.next_action else 0.0
            log.warning("%s failed (%s); retry %d/%d in %.1fs", url, failure(state), state.attempt_number,
                        self.max_retries, delay)

        return AsyncRetrying(stop=stop_after_attempt(self.max_retries + 1), wait=wait, reraise=True,
                             retry=retry_if_exception_type(_Transient), before_sleep=before_sleep)

    async def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST JSON with retries on connection errors, timeouts, 429 and 5xx."""
        client, sem = await self._get_client()
        url = f"{self.base_url}/{path}"
        async with sem:
            try:
                return await self._retrying(url)(self._post_once, client, url, payload)
            except _Transient as exc:
                raise BackendError(f"{url} failed after {self.max_retries + 1} attempt(s): {exc}") from exc

    @staticmethod
    async def _post_once(client: httpx.AsyncClient, url: str, payload: dict[str, Any]) -> dict[str, Any]:
        """One POST: the JSON body, a :class:`_Transient` failure, or a final :class:`BackendError`."""
        try:
            resp = await client.post(url, json=payload)
        except httpx.TransportError as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
        if resp.status_code >= 400:
            msg = error_message(resp)
            if resp.status_code != 429 and resp.status_code < 500:
                raise _StatusError(f"HTTP {resp.status_code} from {url}: {msg}", resp.status_code)
            raise _Transient(f"HTTP {resp.status_code}: {msg}", retry_after_seconds(resp.headers.get("retry-after")))
        try:
            body = resp.json()
        except ValueError as exc:
            raise BackendError(f"{url} returned invalid JSON: {resp.text[:200]!r}") from exc
        if not isinstance(body, dict):
            raise BackendError(f"{url} returned unexpected JSON: {str(body)[:200]}")
        return body

    # ------------------------------------------------------------ generation
    def generate(self, requests: Sequence[GenerationRequest], *, progress: Progress = None) -> list[str]:
        """One generated text per request, in order (chat prompts via /chat/completions)."""
        reqs = list(requests)

        async def run(report: Callable[[int], None]) -> list[str]:
            async def one(req: GenerationRequest) -> str:
                text = await self._generate_one(req)
                report(1)
                return text

            return await self._gather([one(r) for r in reqs])

        return self._run(run, progress) if reqs else []

    async def _generate_one(self, req: GenerationRequest) -> str:
        payload: dict[str, Any] = {"model": self.name, "max_tokens": req.max_new_tokens,
                                   "temperature": req.temperature}
        stops = [s for s in req.stop if s]
        if stops:
            payload["stop"] = stops
        if isinstance(req.prompt, str):
            body = await self._post("completions", {**payload, "prompt": req.prompt})
            text = self._choice(body).get("text")
        else:
            body = await self._post("chat/completions", {**payload, "messages": list(req.prompt)})
            message = self._choice(body).get("message") or {}
            text = message.get("content")
        return stop_at(text or "", stops)

    def _choice(self, body: dict[str, Any]) -> dict[str, Any]:
        choices = body.get("choices")
        if not choices or not isinstance(choices[0], dict):
            raise BackendError(f"{self.base_url}: response has no choices: {str(body)[:200]}")
        return choices[0]

    # ------------------------------------------------------------ scoring
    def _render_context(self, context: Prompt, suffix: str) -> str:
        if isinstance(context, str):
            return context + suffix
        if not self.tokenizer_name:
            raise BackendError(
                "the openai backend scores log-likelihoods over /completions, which takes text, and chat "
                "contexts need the model's chat template to become text: use --format study or pass "
                "--tokenizer (the model's tokenizer, a local path or hub id)")
        if self._tokenizer is None:
            try:
                from transformers import AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(self.tokenizer_name)
            except (OSError, ValueError) as exc:
                raise BackendError(f"could not load tokenizer {self.tokenizer_name!r}: {exc}") from exc
        if not getattr(self._tokenizer, "chat_template", None):
            raise BackendError(f"tokenizer {self.tokenizer_name!r} has no chat template; use --format study")
        text = self._tokenizer.apply_chat_template(list(context), tokenize=False, add_generation_prompt=True)
        return text + suffix

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest], *,
                      progress: Progress = None) -> list[list[float]]:
        """Summed log-probability of each continuation, from echoed prompt log-probabilities."""
        jobs: list[tuple[str, list[str]]] = []
        for req in requests:
            if not req.continuations or any(not c for c in req.continuations):
                raise BackendError("every log-likelihood request needs non-empty continuations")
            jobs.append((self._render_context(req.context, req.continuation_prefix), list(req.continuations)))

        async def run(report: Callable[[int], None]) -> list[list[float]]:
            async def one(ctx: str, conts: list[str]) -> list[float]:
                scores = await self._gather([self._score_one(ctx, c) for c in conts])
                report(1)
                return scores

            return await self._gather([one(ctx, conts) for ctx, conts in jobs])

        return self._run(run, progress) if jobs else []

    async def _score_one(self, context: str, continuation: str) -> float:
        prompt = context + continuation
        payload = {"model": self.name, "prompt": prompt, "echo": True, "logprobs": 1, "temperature": 0.0,
                   "max_tokens": self._min_score_tokens}
        try:
            body = await self._post("completions", payload)
        except _StatusError as exc:
            if exc.status != 400 or payload["max_tokens"] != 0:
                raise
            log.info("server rejected max_tokens=0 (%s); scoring with max_tokens=1", exc)
            self._min_score_tokens = 1
            body = await self._post("completions", {**payload, "max_tokens": 1})
        return self._sum_logprobs(body, len(context), len(prompt))

    def _sum_logprobs(self, body: dict[str, Any], start: int, end: int) -> float:
        lp = self._choice(body).get("logprobs")
        offsets = lp.get("text_offset") if isinstance(lp, dict) else None
        values = lp.get("token_logprobs") if isinstance(lp, dict) else None
        if not offsets or not values:
            raise BackendError(
                f"the server at {self.base_url} returned no prompt log-probabilities: it does not support "
                "echo + logprobs on /completions, so it cannot score answers; use --mode generate")
        tokens = lp.get("tokens") or [""] * len(offsets)
        total, n = 0.0, 0
        for tok, off, val in zip(tokens, offsets, values, strict=False):
            if off < start:
                if off + len(tok or "") > start and not self._warned_boundary:
                    self._warned_boundary = True
                    log.warning("token %r crosses the context/continuation boundary and is not scored; "
                                "start continuations at a token boundary (e.g. with a space)", tok)
                continue
            if off >= end:  # a generated token (max_tokens=1 fallback)
                break
            if val is None:
                raise BackendError(f"the server at {self.base_url} gave no log-probability for continuation "
                                   f"token {tok!r} (an empty context cannot be scored)")
            total += float(val)
            n += 1
        if n == 0:
            raise BackendError(f"the server at {self.base_url} did not echo the prompt's tokens with their "
                               "log-probabilities; use --mode generate")
        return total

    # ------------------------------------------------------------ misc
    def info(self) -> ModelInfo:
        """Backend, model and server URL (never the API key)."""
        return ModelInfo(self.backend_name, self.name, {
            "base_url": self.base_url, "concurrency": self.concurrency, "tokenizer": self.tokenizer_name,
        })

    def close(self) -> None:
        """Close the HTTP client and stop the background event loop."""
        with self._lock:
            loop, thread, client = self._loop, self._thread, self._client
            self._loop = self._thread = self._client = self._sem = None
        if loop is None:
            return
        if client is not None and loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(timeout=10)
            except Exception as exc:  # best effort on shutdown
                log.debug("closing the HTTP client failed: %s", exc)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=10)
        loop.close()

    def __enter__(self) -> OpenAIModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
