"""The openai backend against a real ``mmedkit.serve.openai_api`` server process (no mocks).

Two servers run for the module: one open, one that requires an API key. Both and the local
reference model load the same tiny model on CPU in float32, so scores and greedy texts must agree.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from server_process import ServerProcess, free_port

from mmedkit.models.base import BackendError, GenerationRequest, LoglikelihoodRequest
from mmedkit.models.hf import HFModel
from mmedkit.models.openai_backend import OpenAIModel
from mmedkit.models.openai_http import retry_after_seconds
from mmedkit.models.openai_probe import NEEDS, echo_tokens, probe
from mmedkit.models.tiny import build_tiny_model

API_KEY = "sk-test-7f3a9c"
KEY_ENV = "MMED_TEST_SERVER_KEY"
TEXT = """The patient presented with fever, cough and shortness of breath for three days.
Which of the following is the best treatment for this patient? A. Amoxicillin B. Aspirin C. Insulin D. Rest
###Answer: OPTION A IS CORRECT. A 54-year-old man with chest pain radiating to the left arm.
Le patient présente une fièvre et une toux. El paciente tiene dolor abdominal. 患者发热咳嗽三天。
"""
CHAT = [{"role": "system", "content": "You're a doctor. Answer with the best option directly."},
        {"role": "user", "content": "###Question: fever and cough. ###Options: A. Amoxicillin B. Aspirin"}]


def _server(model_dir: Path, log_path: Path, api_key: str | None = None) -> ServerProcess:
    """The plain OpenAI-compatible server on the tiny model, optionally requiring ``api_key``."""
    args = ["--model", str(model_dir), "--device", "cpu", "--dtype", "float32"]
    env = {}
    if api_key:
        env[KEY_ENV] = api_key
        args += ["--api-key-env", KEY_ENV]
    return ServerProcess(args, log_path, module="mmedkit.serve.openai_api", env=env)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("openai")
    (root / "text.txt").write_text(TEXT * 3, encoding="utf-8")
    return build_tiny_model(root / "model", text=[root / "text.txt"])


@pytest.fixture(scope="module")
def servers(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    logs = tmp_path_factory.mktemp("server-logs")
    started = {"open": _server(model_dir, logs / "open.log"),
               "keyed": _server(model_dir, logs / "keyed.log", api_key=API_KEY)}
    try:
        for s in started.values():
            s.wait_ready()
        yield started
    finally:
        for s in started.values():
            s.stop()


@pytest.fixture(scope="module")
def hf(model_dir: Path) -> HFModel:
    return HFModel(str(model_dir), device="cpu", dtype="float32")


@pytest.fixture
def client(servers: dict[str, ServerProcess], model_dir: Path) -> Iterator[OpenAIModel]:
    model = OpenAIModel("tiny", base_url=servers["open"].url, tokenizer=str(model_dir), api_key_env=KEY_ENV)
    yield model
    model.close()


def test_loglikelihood_matches_local_model(client: OpenAIModel, hf: HFModel) -> None:
    reqs = [
        LoglikelihoodRequest("The patient presented with fever.\n###Answer: OPTION", (" A", " B", " A,C")),
        LoglikelihoodRequest("Le patient présente une fièvre.", (" A", " D"), continuation_prefix=" OPTION"),
        LoglikelihoodRequest(CHAT, (" A", " B", " A,B"), continuation_prefix="###Answer: OPTION"),
    ]
    done: list[int] = []
    got = client.loglikelihood(reqs, progress=done.append)
    want = hf.loglikelihood(reqs)
    assert sum(done) == len(reqs)
    assert [len(g) for g in got] == [len(r.continuations) for r in reqs]
    for g, w in zip(got, want, strict=True):
        assert g == pytest.approx(w, abs=1e-4)


def test_chat_loglikelihood_needs_a_tokenizer(servers: dict[str, ServerProcess]) -> None:
    model = OpenAIModel("tiny", base_url=servers["open"].url, api_key_env=KEY_ENV)
    with pytest.raises(BackendError, match="--tokenizer"):
        model.loglikelihood([LoglikelihoodRequest(CHAT, (" A",))])
    model.close()


def test_generate_matches_local_model(client: OpenAIModel, hf: HFModel) -> None:
    reqs = [GenerationRequest(CHAT, max_new_tokens=12),
            GenerationRequest("The patient presented with", max_new_tokens=12),
            GenerationRequest("A 54-year-old man with chest pain", max_new_tokens=12, stop=("patient",))]
    got = client.generate(reqs)
    assert got == [hf.generate([r])[0] for r in reqs]
    assert any(got)


def test_concurrent_requests_keep_their_order(servers: dict[str, ServerProcess], hf: HFModel) -> None:
    words = TEXT.split()
    reqs = [GenerationRequest(" ".join(words[i:i + 3 + i % 4]), max_new_tokens=4) for i in range(12)]
    done: list[int] = []
    with OpenAIModel("tiny", base_url=servers["open"].url, concurrency=4, api_key_env=KEY_ENV) as model:
        got = model.generate(reqs, progress=done.append)
    assert got == [hf.generate([r])[0] for r in reqs]
    assert sum(done) == 12


def test_works_from_threads_and_inside_event_loops(client: OpenAIModel) -> None:
    req = [GenerationRequest("The patient", max_new_tokens=3)]
    want = client.generate(req)
    out: list[list[str]] = []
    t = threading.Thread(target=lambda: out.append(client.generate(req)))
    t.start()
    t.join(30)

    async def inside_loop() -> list[str]:
        return client.generate(req)

    assert out == [want]
    assert asyncio.run(inside_loop()) == want


def test_api_key(servers: dict[str, ServerProcess]) -> None:
    url = servers["keyed"].url
    req = [GenerationRequest("The patient", max_new_tokens=2)]
    with OpenAIModel("tiny", base_url=url, api_key_env=KEY_ENV) as anonymous, \
            pytest.raises(BackendError, match="401"):
        anonymous.generate(req)
    with OpenAIModel("tiny", base_url=url, api_key="wrong", max_retries=0) as wrong, \
            pytest.raises(BackendError, match="401"):
        wrong.generate(req)
    with OpenAIModel("tiny", base_url=url, api_key=API_KEY) as keyed:
        assert len(keyed.generate(req)) == 1
        assert API_KEY not in json.dumps(keyed.info().details) + repr(keyed)
    assert httpx.get(f"{url}/models").status_code == 401
    assert httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 200


def test_unreachable_server_is_reported_by_the_probe_at_once() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    start = time.monotonic()
    with OpenAIModel("tiny", base_url=url, api_key_env=KEY_ENV) as model, pytest.raises(BackendError) as err:
        model.loglikelihood([LoglikelihoodRequest("x", (" y",))])
    assert f"{url}/completions is unreachable" in str(err.value) and "start the server" in str(err.value)
    assert time.monotonic() - start < 5


def test_unreachable_server_fails_after_retries_with_a_tally() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    start = time.monotonic()
    with OpenAIModel("tiny", base_url=url, max_retries=1, backoff=0.01, api_key_env=KEY_ENV, probe=False) as model, \
            pytest.raises(BackendError, match=r"after 2 attempt") as err:
        model.generate([GenerationRequest("x", max_new_tokens=1)])
    assert url in str(err.value)
    assert "1 request(s): 0 answered, 1 failed" in str(err.value) and "1 retries (1x connection)" in str(err.value)
    assert time.monotonic() - start < 10


def test_probe_verdict_for_the_mmed_server(servers: dict[str, ServerProcess]) -> None:
    report = probe(servers["open"].url, "tiny", NEEDS, timeout=20)
    assert report.ok, report.verdict()
    assert [c.name for c in report.checks] == ["completions", "chat", "stream", "max_tokens", "prompt_logprobs"]
    assert report.score_tokens == 0  # this server honours max_tokens 0
    assert "aligned with the context" in report.checks[-1].detail


def test_probe_stops_at_a_refused_api_key(servers: dict[str, ServerProcess]) -> None:
    report = probe(servers["keyed"].url, "tiny", ["logprobs", "chat"], api_key="wrong", timeout=20)
    assert not report.ok and len(report.checks) == 1  # nothing else can be learnt
    assert "HTTP 401" in report.verdict() and "--api-key-env" in report.verdict()
    with pytest.raises(BackendError, match="the server cannot do what this run needs"):
        report.raise_for_failures()


def test_probe_verdict_is_recorded(client: OpenAIModel) -> None:
    client.loglikelihood([LoglikelihoodRequest("The patient", (" A",))])
    details = client.info().details
    assert details["score_tokens"] == 0 and details["requests"]["answered"] >= 1
    assert [c["name"] for c in details["probe"]["logprobs"]["checks"]] == ["max_tokens", "prompt_logprobs"]


def test_streaming_chat_matches_non_streamed(servers: dict[str, ServerProcess]) -> None:
    url = f"{servers['open'].url}/chat/completions"
    body = {"model": "tiny", "messages": CHAT, "max_tokens": 16, "temperature": 0}
    full = httpx.post(url, json=body, timeout=30).json()["choices"][0]["message"]["content"]
    events: list[str] = []
    with httpx.stream("POST", url, json={**body, "stream": True}, timeout=30) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = [line[len("data: "):] for line in resp.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == full
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


def test_completions_echo_logprobs(servers: dict[str, ServerProcess]) -> None:
    prompt = "The patient presented with fever"
    body = {"model": "tiny", "prompt": prompt, "max_tokens": 0, "echo": True, "logprobs": 1}
    out = httpx.post(f"{servers['open'].url}/completions", json=body, timeout=30).json()
    choice = out["choices"][0]
    lp = choice["logprobs"]
    assert choice["text"] == prompt
    assert "".join(lp["tokens"]) == prompt
    assert lp["text_offset"][0] == 0 and lp["top_logprobs"] is None
    assert all(v is not None and v < 0 for v in lp["token_logprobs"][1:])
    assert out["usage"]["completion_tokens"] == 0


class _Scripted(BaseHTTPRequestHandler):
    """A stand-in server with the failure modes of real ones, chosen by the prompt's first word: ``busy``
    answers 503 + Retry-After: 0 once, ``down`` 503 + Retry-After: 30 always, ``broken`` 500, ``slow``
    takes 2 s, ``nolp`` returns no logprobs; otherwise it echoes the prompt's tokens with one
    generated token after them (it honours max_tokens 1)."""

    calls: list[str] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["prompt"]
        word = prompt.split()[0]
        self.calls.append(word)
        if word == "busy" and self.calls.count("busy") == 1:
            self._send(503, {"error": {"message": "overloaded"}}, {"Retry-After": "0"})
        elif word == "down":
            self._send(503, {"error": {"message": "loading"}}, {"Retry-After": "30"})
        elif word == "broken":
            self._send(500, {"error": {"message": "internal"}})
        elif word == "nolp":
            self._send(200, {"choices": [{"text": prompt + "!", "logprobs": None}]})
        else:
            if word == "slow":
                time.sleep(2)
            cut = max(prompt.rfind(" "), 0)
            lp = {"tokens": [prompt[:cut], prompt[cut:], " gen"], "token_logprobs": [None, -1.5, -7.0],
                  "text_offset": [0, cut, len(prompt)], "top_logprobs": None}
            self._send(200, {"choices": [{"text": prompt + " gen", "logprobs": lp}]})

    def _send(self, status: int, obj: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        for k, v in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Scripted.calls = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def _scripted_model(url: str, **options: object) -> OpenAIModel:
    return OpenAIModel("m", base_url=url, max_retries=2, backoff=30.0, api_key_env=KEY_ENV, probe=False,
                       **options)  # type: ignore[arg-type]


def test_retry_after_and_the_generated_token_dropped(scripted: str) -> None:
    start = time.monotonic()
    with _scripted_model(scripted) as model:
        assert model.loglikelihood([LoglikelihoodRequest("busy ctx", (" x",))]) == [[-1.5]]
        assert time.monotonic() - start < 5  # Retry-After: 0 beat the 30 s backoff
        assert _Scripted.calls == ["busy", "busy"]
        assert model.tally.summary() == "1 request(s): 1 answered; 1 retries (1x HTTP 503)"
        with pytest.raises(BackendError, match="--mode generate"):
            model.loglikelihood([LoglikelihoodRequest("nolp", (" z",))])


def test_only_busy_and_connection_errors_are_retried(scripted: str) -> None:
    with _scripted_model(scripted) as model, pytest.raises(BackendError, match="HTTP 500") as err:
        model.loglikelihood([LoglikelihoodRequest("broken", (" x",))])
    assert _Scripted.calls == ["broken"] and "0 answered, 1 failed (1x HTTP 500" in str(err.value)


def test_a_timed_out_request_is_not_retried(scripted: str) -> None:
    start = time.monotonic()
    with _scripted_model(scripted, timeout=0.5) as model, pytest.raises(BackendError, match="not retried") as err:
        model.generate([GenerationRequest("slow one", max_new_tokens=1)])
    assert _Scripted.calls == ["slow"] and time.monotonic() - start < 2
    assert "no answer within 0.5 s" in str(err.value) and "max_tokens 0 as no limit" in str(err.value)


def test_item_and_run_deadlines_stop_the_waiting(scripted: str) -> None:
    start = time.monotonic()
    with _scripted_model(scripted, item_timeout=1.0) as model, \
            pytest.raises(BackendError, match="did not finish within 1 s") as err:
        model.loglikelihood([LoglikelihoodRequest("down ctx", (" x", " y"))])  # Retry-After: 30 on every call
    assert time.monotonic() - start < 3
    assert "2 request(s): 0 answered, 2 stopped unanswered" in str(err.value)
    assert "2 retries (2x HTTP 503)" in str(err.value)
    with _scripted_model(scripted, run_timeout=1.5) as model:
        assert model.generate([GenerationRequest("fine", max_new_tokens=1)]) == ["fine gen"]
        with pytest.raises(BackendError, match="deadline of 1.5 s"):
            model.generate([GenerationRequest("down", max_new_tokens=1)])
        with pytest.raises(BackendError, match="deadline of 1.5 s has passed"):
            model.generate([GenerationRequest("fine", max_new_tokens=1)])
    assert time.monotonic() - start < 6


def test_echo_with_a_leading_bos_token_is_measured_in_the_prompt() -> None:
    """vLLM echoes a Llama 3 prompt with its BOS token first and counts the BOS's text in the offsets."""
    context, prompt = "Fever is a sign\n###Answer: OPTION", "Fever is a sign\n###Answer: OPTION B"
    tokens = ["<|begin_of_text|>", "Fever", " is", " a", " sign", "\n", "###", "Answer", ":", " OPTION", " B", "."]
    offsets = [sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]
    values = [None, -9.1, -3.2, -1.1, -4.0, -2.2, -6.3, -0.4, -0.1, -3.3, -1.25, -0.7]
    lp = {"tokens": tokens, "text_offset": offsets, "token_logprobs": values}
    rows = echo_tokens(lp, prompt)
    assert rows is not None and rows[0] == ("Fever", 0, -9.1) and "".join(t for t, _, _ in rows[:-1]) == prompt
    with OpenAIModel("m", probe=False, api_key_env=KEY_ENV) as model:
        assert model._sum_logprobs({"choices": [{"logprobs": lp}]}, len(context), prompt) == -1.25
    no_bos = {"tokens": tokens[1:], "text_offset": [o - len(tokens[0]) for o in offsets[1:]],
              "token_logprobs": values[1:]}
    assert echo_tokens(no_bos, prompt) == rows  # the same echo without a BOS


@pytest.mark.parametrize("header,expected", [
    (None, None), ("", None), ("2", 2.0), ("0.5", 0.5), ("-3", 0.0), ("99999", 600.0), ("soon", None),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # a date in the past: retry at once
])
def test_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert retry_after_seconds(header) == expected


def test_retry_after_date_in_the_future() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (retry_after_seconds(when) or 0) <= 30


def test_backoff_doubles_up_to_the_cap_with_jitter(caplog: pytest.LogCaptureFixture) -> None:
    """Seven transient failures: waits of 1, 2, 4, ... s capped at 60 s, plus up to 1 s of jitter (not slept here)."""
    transport = httpx.MockTransport(lambda request: httpx.Response(503, json={"error": {"message": "busy"}}))
    slept: list[float] = []

    async def no_sleep(seconds: float) -> None:
        slept.append(seconds)

    model = OpenAIModel("m", base_url="http://upstream.test/v1", max_retries=7, backoff=1.0, api_key_env=KEY_ENV)
    client = httpx.AsyncClient(transport=transport)

    async def run() -> None:
        retrying = model._retrying("http://upstream.test/v1/completions").copy(sleep=no_sleep)
        await retrying(model._post_once, client, "http://upstream.test/v1/completions", {}, 10.0)

    with caplog.at_level("WARNING"), pytest.raises(Exception, match="HTTP 503: busy"):
        asyncio.run(run())
    assert "retry 7/7" in caplog.text
    for base, s in zip([1, 2, 4, 8, 16, 32, 60], slept, strict=True):
        assert base <= s <= base + 1
