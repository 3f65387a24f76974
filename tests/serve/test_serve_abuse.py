"""Limits under abuse and bad input answered as clear errors (issue 15): Host names, secrets, deadlines,
stop lists, broken text."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from serve_fakes import EchoDoctor, ModelBackend, Serve
from server_process import free_port

from mmedkit.serve.backends import LocalBackend
from mmedkit.serve.engine import GenerationStats, GenParams
from mmedkit.serve.middleware import BodyLimit, InFlightLimit
from mmedkit.serve.safety import SafetyPolicy
from mmedkit.serve.settings import default_allowed_hosts
from mmedkit.serve.upstream import UpstreamBackend, discover_model, redact

URL = "/v1/chat/completions"


def _user(text: str, **extra: object) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": text}], **extra}


@pytest.mark.parametrize("bind", ["127.0.0.1", "localhost", "::1"])
def test_foreign_host_names_are_refused_on_every_loopback_address(serve: Serve, bind: str) -> None:
    client = serve(allowed_hosts=default_allowed_hosts(bind))
    assert client.get("/healthz", headers={"Host": "evil.com"}).status_code == 400
    assert client.get("/healthz", headers={"Host": "[::1]:8000"}).status_code == 200


def test_the_plain_openai_server_checks_host_names_by_default(tiny_model_dir: Path) -> None:
    from starlette.testclient import TestClient

    from mmedkit.models.hf import HFModel
    from mmedkit.serve.openai_api import create_app

    app = create_app(HFModel(str(tiny_model_dir), device="cpu", dtype="float32"))
    client = TestClient(app, base_url="http://127.0.0.1")
    assert client.get("/healthz", headers={"Host": "evil.com"}).status_code == 400
    assert client.get("/healthz").status_code == 200


def test_upstream_credentials_never_show(serve: Serve) -> None:
    secret = "http://alice:s3cret-pw@127.0.0.1:{}/v1"
    assert redact(secret.format(9)) == "http://***@127.0.0.1:9/v1"
    url = secret.format(free_port())
    with pytest.raises(Exception) as err:
        discover_model(url, timeout=2)
    assert "s3cret" not in str(err.value) and "alice" not in str(err.value) and "***@127.0.0.1" in str(err.value)
    client = serve(UpstreamBackend(url, "m"), page=False)
    assert "s3cret" not in client.get("/healthz").text
    resp = client.post(URL, json=_user("mild cough", max_tokens=2))
    assert resp.status_code == 502 and "s3cret" not in resp.text and "***@" in resp.text
    assert "s3cret" not in client.post(URL, json=_user("mild cough", max_tokens=2, stream=True)).text


def test_a_deadline_is_a_server_error(serve: Serve) -> None:
    client = serve(ModelBackend(EchoDoctor(ramble=True), delay=0.01), request_timeout=0.3)
    resp = client.post(URL, json=_user("Sore throat", max_tokens=300))
    assert resp.status_code == 503 and resp.json()["error"]["type"] == "server_error"


def test_a_huge_stop_list_is_refused_at_once(serve: Serve) -> None:
    client = serve()
    started = time.monotonic()
    resp = client.post(URL, json=_user("cough", stop=[f"s{i}" for i in range(4000)]))
    assert resp.status_code == 400 and "at most 8 stop strings (got 4000)" in resp.json()["error"]["message"]
    resp = client.post(URL, json=_user("cough", stop="x" * 1000))
    assert resp.status_code == 400 and "at most 64 characters" in resp.json()["error"]["message"]
    assert time.monotonic() - started < 2
    assert client.post(URL, json=_user("cough", stop=["\n"] * 8, max_tokens=2)).status_code == 200


class SlowEngine:
    """A local engine whose generation takes ``step`` seconds per token under its lock, as a real one."""

    def __init__(self, step: float = 0.05) -> None:
        self.step = step
        self.lock = threading.Lock()
        self.model = SimpleNamespace(name="slow", tokenizer=SimpleNamespace(chat_template="{{ messages }}"))

    def stream_chat(self, messages: list, params: GenParams, emit: Callable[[str], None],
                    cancel: threading.Event) -> GenerationStats:
        with self.lock:
            for _ in range(params.max_tokens):
                if cancel.is_set():
                    break
                time.sleep(self.step)
                emit("word ")
        return GenerationStats(finish_reason="length")


def test_after_a_deadline_the_slot_is_freed_only_once_the_model_stopped(serve: Serve) -> None:
    engine = SlowEngine()
    client = serve(LocalBackend(engine, "slow"), request_timeout=0.3, page=False)  # type: ignore[arg-type]
    assert client.post(URL, json=_user("Sore throat", max_tokens=100)).status_code == 503
    assert not engine.lock.locked()  # the next request does not wait for the last one's model
    events = client.post(URL, json=_user("Sore throat", max_tokens=100, stream=True)).text
    assert "request timeout" in events and not engine.lock.locked()
    started = time.monotonic()
    assert client.post(URL, json=_user("Sore throat", max_tokens=2)).status_code == 200
    assert time.monotonic() - started < 1


LONE = '{"messages": [{"role": "user", "content": "%s \\ud800 \\udfff"}]%s}'


@pytest.mark.parametrize("stream", [False, True])
def test_lone_surrogates_are_replaced_not_a_500(serve: Serve, tmp_path: Path, stream: bool) -> None:
    log = tmp_path / "conversations.jsonl"
    client = serve(conversation_log=log)
    extra = ', "stream": true' if stream else ""
    for text in ("I have a mild cough", "I have crushing chest pain and I can't breathe"):
        resp = client.post(URL, content=LONE % (text, extra), headers={"Content-Type": "application/json"})
        assert resp.status_code == 200 and resp.headers["content-type"].startswith(
            "text/event-stream" if stream else "application/json")
        assert "\ufffd" in resp.text or "red_flag" in resp.text
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 2 and records[1]["safety"]["red_flag"] == "cardiac"  # the emergency is logged
    assert records[0]["messages"][0]["content"].endswith("\ufffd \ufffd")


def test_a_failure_inside_a_stream_ends_it_with_an_error_event(serve: Serve) -> None:
    class Broken(ModelBackend):
        async def stream(self, messages: list, params: GenParams, stats: GenerationStats) -> AsyncIterator[str]:
            yield "Hello"
            raise RuntimeError("bug")

    client = serve(Broken(EchoDoctor()))
    events = client.post(URL, json=_user("cough", stream=True)).text
    assert '"internal error: RuntimeError"' in events and events.rstrip().endswith("data: [DONE]")


def test_a_body_that_never_ends_is_refused_with_408() -> None:
    async def scenario() -> list[dict]:
        async def app(scope: dict, receive: Callable, send: Callable) -> None:
            raise AssertionError("the app must not see the request")

        async def trickle() -> dict:
            await asyncio.sleep(0.05)
            return {"type": "http.request", "body": b"{", "more_body": True}

        sent: list[dict] = []

        async def send(msg: dict) -> None:
            sent.append(msg)

        await BodyLimit(app, limit=1024, timeout=0.3)({"type": "http", "headers": []}, trickle, send)
        return sent

    sent = asyncio.run(scenario())
    assert sent[0]["status"] == 408 and (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[1]["body"])["error"]["message"] == "request body not received within 0.3 s"


@pytest.mark.parametrize("text", ['<span style="color:red">headache</span>',
                                  '<p class="msg">I have had a cough since <b>Monday</b>&nbsp;</p>',
                                  'see https://example.es/salud/tos?lang=es my throat hurts'])
def test_markup_does_not_decide_the_language(policy: SafetyPolicy, text: str) -> None:
    assert policy.detect_language(text, "es") == "en"


def test_requests_in_progress_are_bounded_but_healthz_always_answers() -> None:
    async def scenario() -> list[int]:
        release = asyncio.Event()

        async def app(scope: dict, receive: Callable, send: Callable) -> None:
            if scope["path"] != "/healthz":
                await release.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        limited = InFlightLimit(app, limit=2)
        statuses: list[int] = []

        async def call(path: str) -> None:
            async def receive() -> dict:
                return {"type": "http.request", "body": b""}

            async def send(msg: dict) -> None:
                if msg["type"] == "http.response.start":
                    statuses.append(msg["status"])

            await limited({"type": "http", "path": path, "method": "POST", "headers": []}, receive, send)

        held = [asyncio.ensure_future(call("/v1/chat/completions")) for _ in range(2)]
        await asyncio.sleep(0.01)
        await call("/v1/chat/completions")  # over the limit: refused at once
        await call("/healthz")
        release.set()
        await asyncio.gather(*held)
        await call("/v1/chat/completions")
        return statuses

    assert asyncio.run(scenario()) == [429, 200, 200, 200, 200]
