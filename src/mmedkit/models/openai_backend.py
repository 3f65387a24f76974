"""OpenAI-compatible HTTP backend: vLLM, llama.cpp server, Ollama, TGI, hosted APIs, ``mmed serve``.

Generation goes to ``/chat/completions`` (chat prompts) or ``/completions`` (text prompts).
Log-likelihood scoring uses the standard echo trick: ``/completions`` with
``prompt = context + continuation``, ``echo: true``, ``logprobs: 1`` and ``max_tokens`` 0 (or 1, the
generated token dropped); the continuation's score is the sum of the echoed ``token_logprobs`` whose
``text_offset`` falls at or after the end of the context. A token that straddles the
context/continuation boundary is not counted, so continuations should start at a token boundary
(e.g. with a space).

Before the first request of a kind, the server is probed (:mod:`mmedkit.models.openai_probe`): one
short request per capability the run needs, each with its own deadline. The verdict picks 0 or 1 new
token for scoring, or stops the run within seconds saying what the server lacks and what to do.

The public methods are synchronous. Requests run concurrently (at most ``concurrency`` in flight)
on an event loop owned by this object and running in a background thread, so they work from any
thread, including one that already runs an event loop. Progress callbacks run in the calling thread.

Budgets, not endless retries: each request has ``timeout`` seconds, each item (all its requests,
retries included) ``item_timeout``, the whole run (every call on this object) ``run_timeout``. Only
429, 503 and a refused or reset connection are retried (``max_retries`` times, see
:mod:`mmedkit.models.openai_http`), with tenacity: the wait is the server's ``Retry-After`` when it
sends one (seconds or an HTTP date, at most 600 s), else ``backoff`` seconds doubling per attempt (at
most 60 s) plus up to ``backoff`` seconds of jitter. A timed-out request is not retried. A failure
stops the call with the tally of the run's requests (answered, retried and failed, by reason).
The openai SDK's own retry logic was weighed and not used: it retries timeouts, waits its own backoff
on ``Retry-After: 0``, gives up on a ``Retry-After`` above 120 s, and would add a dependency.
"""

from __future__ import annotations

import asyncio
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
from mmedkit.models.openai_http import RequestTally, Transient, check_status, classify, redact
from mmedkit.models.openai_probe import PROBE_TIMEOUT, Prober, ProbeReport, echo_tokens

log = logging.getLogger(__name__)


DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
_MAX_DELAY = 60.0


class OpenAIModel(LanguageModel):
    """A model behind any OpenAI-compatible HTTP API."""

    backend_name = "openai"

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 api_key_env: str = "OPENAI_API_KEY", concurrency: int = 8, timeout: float = 120.0,
                 max_retries: int = 5, backoff: float = 1.0, tokenizer: str | None = None,
                 item_timeout: float | None = 600.0, run_timeout: float | None = None, probe: bool = True,
                 probe_timeout: float = PROBE_TIMEOUT) -> None:
        """``probe=False`` skips the probe (scoring then asks for 1 new token, which every server bounds)."""
        self.name = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self._api_key = api_key if api_key is not None else (os.environ.get(api_key_env) or None)
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.max_retries = max(0, max_retries)
        self.backoff = max(0.0, backoff)
        self.tokenizer_name = tokenizer
        self._tokenizer: Any = None
        self.item_timeout = item_timeout
        self.run_timeout = run_timeout
        self.probe = probe
        self.probe_timeout = probe_timeout
        self.probes: dict[str, ProbeReport] = {}
        self.tally = RequestTally()
        self._score_tokens = 1
        self._deadline: float | None = None
        self._warned_boundary = False
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: httpx.AsyncClient | None = None
        self._sem: asyncio.Semaphore | None = None

    def __repr__(self) -> str:
        return f"OpenAIModel({self.name!r}, base_url={redact(self.base_url)!r})"

    # ------------------------------------------------------------ probe
    def require(self, *needs: str) -> None:
        """Probe the capabilities in ``needs`` not probed yet (see :mod:`mmedkit.models.openai_probe`);
        raise :class:`BackendError` with the probe's verdict when the server lacks one."""
        todo = [n for n in needs if n not in self.probes]
        if not self.probe or not todo:
            return
        report = Prober(self.base_url, self.name, api_key=self._api_key, timeout=self.probe_timeout).run(todo)
        log.info("%s", report.verdict())
        report.raise_for_failures()
        for need in todo:
            self.probes[need] = report
        if "logprobs" in todo and report.score_tokens is not None:
            self._score_tokens = report.score_tokens

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
        if self.run_timeout is not None and self._deadline is None:
            self._deadline = time.monotonic() + self.run_timeout
        remaining = None if self._deadline is None else self._deadline - time.monotonic()
        troubles = self.tally.troubles()

        async def main() -> Any:
            if remaining is not None and remaining <= 0:
                raise BackendError(f"the run's deadline of {self.run_timeout:g} s has passed")
            try:
                async with asyncio.timeout(remaining):
                    return await make(done.put)
            except TimeoutError:
                raise BackendError(f"the run did not finish within its deadline of {self.run_timeout:g} s") from None

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
        except BackendError as exc:
            fut.cancel()
            raise BackendError(f"{exc}\n{self.tally.summary()}") from exc
        except BaseException:
            fut.cancel()
            raise
        finally:
            if self.tally.troubles() != troubles:  # this call retried or failed: say so once
                log.warning("%s: %s", redact(self.base_url), self.tally.summary())

    async def _item(self, work: Awaitable[Any]) -> Any:
        """``work`` (all requests of one item) within ``item_timeout`` seconds."""
        try:
            async with asyncio.timeout(self.item_timeout):
                return await work
        except TimeoutError:
            raise BackendError(f"an item did not finish within {self.item_timeout:g} s (all its requests, "
                               "waiting and retries included)") from None

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
            self.tally.retries[getattr(failure(state), "kind", "error")] += 1
            log.warning("%s failed (%s); retry %d/%d in %.1fs", url, failure(state), state.attempt_number,
                        self.max_retries, delay)

        return AsyncRetrying(stop=stop_after_attempt(self.max_retries + 1), wait=wait, reraise=True,
                             retry=retry_if_exception_type(Transient), before_sleep=before_sleep)

    async def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST JSON; retry 429, 503 and refused or reset connections; count the outcome in ``tally``."""
        client, sem = await self._get_client()
        url = f"{self.base_url}/{path}"
        async with sem:
            try:
                body = await self._retrying(url)(self._post_once, client, url, payload, self.timeout)
            except Transient as exc:
                err = BackendError(f"{redact(url)} failed after {self.max_retries + 1} attempt(s): {exc}")
                self.tally.failed(err)
                raise err from exc
            except BackendError as exc:
                self.tally.failed(exc)
                raise
            except asyncio.CancelledError:
                self.tally.stopped += 1
                raise
        self.tally.ok += 1
        return body

    @staticmethod
    async def _post_once(client: httpx.AsyncClient, url: str, payload: dict[str, Any],
                         timeout: float) -> dict[str, Any]:
        """One POST: the JSON body, a :class:`Transient` failure, or a final :class:`BackendError`."""
        try:
            resp = await client.post(url, json=payload)
        except httpx.HTTPError as exc:
            raise classify(exc, redact(url), timeout) from exc
        check_status(resp, redact(url))
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
        self.require(*(["chat"] if any(not isinstance(r.prompt, str) for r in reqs) else []),
                     *(["completions"] if any(isinstance(r.prompt, str) for r in reqs) else []))

        async def run(report: Callable[[int], None]) -> list[str]:
            async def one(req: GenerationRequest) -> str:
                text = await self._item(self._generate_one(req))
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
            raise BackendError(f"{redact(self.base_url)}: response has no choices: {str(body)[:200]}")
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
        if jobs:
            self.require("logprobs")

        async def run(report: Callable[[int], None]) -> list[list[float]]:
            async def one(ctx: str, conts: list[str]) -> list[float]:
                scores = await self._item(self._gather([self._score_one(ctx, c) for c in conts]))
                report(1)
                return scores

            return await self._gather([one(ctx, conts) for ctx, conts in jobs])

        return self._run(run, progress) if jobs else []

    async def _score_one(self, context: str, continuation: str) -> float:
        prompt = context + continuation
        payload = {"model": self.name, "prompt": prompt, "echo": True, "logprobs": 1, "temperature": 0.0,
                   "max_tokens": self._score_tokens}
        body = await self._post("completions", payload)
        return self._sum_logprobs(body, len(context), prompt)

    def _sum_logprobs(self, body: dict[str, Any], start: int, prompt: str) -> float:
        """Sum of the echoed log-probabilities of the tokens of ``prompt[start:]``."""
        rows = echo_tokens(self._choice(body).get("logprobs"), prompt)
        if rows is None:
            raise BackendError(
                f"the server at {redact(self.base_url)} returned no prompt log-probabilities: it does not support "
                "echo + logprobs on /completions, so it cannot score answers; use --mode generate")
        total, n = 0.0, 0
        for tok, off, val in rows:
            if off < start:
                if off + len(tok or "") > start and not self._warned_boundary:
                    self._warned_boundary = True
                    log.warning("token %r crosses the context/continuation boundary and is not scored; "
                                "start continuations at a token boundary (e.g. with a space)", tok)
                continue
            if off >= len(prompt):  # a generated token (max_tokens=1)
                break
            if val is None:
                raise BackendError(f"the server at {redact(self.base_url)} gave no log-probability for continuation "
                                   f"token {tok!r} (an empty context cannot be scored)")
            total += float(val)
            n += 1
        if n == 0:
            raise BackendError(f"the server at {redact(self.base_url)} did not echo the prompt's tokens with their "
                               "log-probabilities; use --mode generate")
        return total

    # ------------------------------------------------------------ misc
    def info(self) -> ModelInfo:
        """Backend, model and server URL (never the API key)."""
        return ModelInfo(self.backend_name, self.name, {
            "base_url": redact(self.base_url), "concurrency": self.concurrency, "tokenizer": self.tokenizer_name,
            "score_tokens": self._score_tokens, "requests": self.tally.as_dict(),
            "probe": {need: report.as_dict() for need, report in self.probes.items()},
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
