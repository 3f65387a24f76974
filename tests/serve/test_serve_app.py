"""The chat service in-process (TestClient) over a fake model: API, safety layer, limits, queue, timeouts,
API key, CORS, Host check, conversation log and the page's files. The real server process is covered by
test_serve_smoke.py."""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_fakes import EchoDoctor, ModelBackend, Serve
from starlette.testclient import TestClient

from mmedkit.models.base import GenerationRequest
from mmedkit.serve.safety import SafetyPolicy

KEY = "sk-serve-test-4b1e"
ALLOWED = "http://clinic.example"
URL = "/v1/chat/completions"


def _user(text: str, **extra: object) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": text}], **extra}


def _events(body: str) -> list[dict | str]:
    out: list[dict | str] = []
    for line in body.splitlines():
        if line.startswith("data: "):
            data = line[len("data: "):]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def _stream(client: TestClient, body: dict, headers: dict | None = None) -> list[dict | str]:
    resp = client.post(URL, json={**body, "stream": True}, headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/event-stream")
    return _events(resp.text)


def _text(events: list[dict | str]) -> str:
    chunks = [e for e in events if isinstance(e, dict) and e["choices"]]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)


# ---------------------------------------------------------------- answers and the safety layer
def test_answer_ends_with_the_disclaimer_in_the_users_language(serve: Serve, policy: SafetyPolicy) -> None:
    backend = ModelBackend(EchoDoctor())
    client = serve(backend)
    text = "Mal de gorge et éternuements depuis hier, est-ce un rhume ?"
    out = client.post(URL, json=_user(text, max_tokens=64, temperature=0)).json()
    prompt = policy.prepare([{"role": "user", "content": text}], "fr")
    assert backend.prompts == [prompt]  # the service's French system prompt, not the client's
    answer = backend.model.generate([GenerationRequest(prompt, max_new_tokens=64)])[0]
    assert out["choices"][0]["message"]["content"] == answer + "\n\n" + policy.disclaimer("fr")
    assert out["safety"] == {"language": "fr", "red_flag": None, "evidence": None, "turn": None,
                             "notes": ["disclaimer"]}
    n_prompt, n_answer = sum(len(m["content"].split()) for m in prompt), len(answer.split())
    assert out["usage"] == {"prompt_tokens": n_prompt, "completion_tokens": n_answer,
                            "total_tokens": n_prompt + n_answer}
    assert out["choices"][0]["finish_reason"] == "stop" and out["model"] == "echo-doctor"


def test_streams_piece_by_piece_then_the_disclaimer(serve: Serve, policy: SafetyPolicy) -> None:
    client = serve()
    body = _user("У меня болит горло и насморк, это простуда?", max_tokens=48,
                 stream_options={"include_usage": True})
    events = _stream(client, body)
    assert events[-1] == "[DONE]"
    chunks = [e for e in events if isinstance(e, dict)]
    assert chunks[0]["safety"]["language"] == "ru" and chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    model_pieces = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content") and "part" not in c]
    assert len(model_pieces) > 3
    appended = [c for c in chunks if "part" in c]
    assert [c["part"] for c in appended] == ["disclaimer"]
    assert appended[0]["choices"][0]["delta"]["content"] == "\n\n" + policy.disclaimer("ru")
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == len(model_pieces)
    whole = client.post(URL, json=body).json()["choices"][0]["message"]["content"]
    assert _text(events) == whole  # the same answer, streamed


def test_dose_note_comes_before_the_disclaimer(serve: Serve, policy: SafetyPolicy) -> None:
    client = serve()
    out = client.post(URL, json=_user("Can I take 500 mg of paracetamol for a mild headache?")).json()
    content = out["choices"][0]["message"]["content"]
    assert content.endswith("\n\n" + policy.pack("en").text("dose_note") + "\n\n" + policy.disclaimer("en"))
    assert out["safety"]["notes"] == ["dose", "disclaimer"]
    parts = [e["part"] for e in _stream(client, _user("Can I take 500 mg of paracetamol?"))
             if isinstance(e, dict) and "part" in e]
    assert parts == ["note", "disclaimer"]


@pytest.mark.parametrize(("text", "lang", "category"), [
    ("I have crushing chest pain and I can't breathe", "en", "cardiac"),
    ("生後1ヶ月の赤ちゃんが38度の熱があります", "ja", "infant_fever"),
    ("Mi padre tiene la boca torcida y habla arrastrada", "es", "stroke"),
])
def test_red_flags_are_answered_at_once_without_the_model(serve: Serve, policy: SafetyPolicy,
                                                          text: str, lang: str, category: str) -> None:
    backend = ModelBackend(EchoDoctor())
    client = serve(backend)
    out = client.post(URL, json=_user(text, language="en")).json()
    events = _stream(client, _user(text, language="en"))
    want = policy.emergency_message(policy.screen(text), lang)
    assert out["choices"][0]["message"]["content"] == want
    evidence = out["safety"].pop("evidence")  # the matched phrases, for reviewers
    assert out["safety"] == {"language": lang, "red_flag": category, "turn": 0, "notes": []} and evidence
    assert out["usage"] is None and out["choices"][0]["finish_reason"] == "stop"
    assert events[0]["safety"]["red_flag"] == category and events[-1] == "[DONE]"
    assert _text(events) == want
    assert backend.prompts == []  # no model call
    health = client.get("/healthz").json()
    assert (health["generations"], health["red_flags"], health["queue"]["admitted"]) == (0, 2, 0)


def test_negated_symptom_goes_to_the_model(serve: Serve) -> None:
    backend = ModelBackend(EchoDoctor())
    client = serve(backend)
    out = client.post(URL, json=_user("нет боли в груди, просто кашель", max_tokens=4)).json()
    assert out["safety"]["red_flag"] is None
    assert len(backend.prompts) == 1 and client.get("/healthz").json()["generations"] == 1


def test_without_a_policy_the_client_system_prompt_is_kept(serve: Serve) -> None:
    backend = ModelBackend(EchoDoctor())
    client = serve(backend, safety=False, page=False)
    turns = [{"role": "developer", "content": "Answer briefly."}, {"role": "user", "content": "I want to kill myself"}]
    out = client.post(URL, json={"messages": turns, "max_tokens": 5}).json()
    assert backend.prompts == [[{"role": "system", "content": "Answer briefly."}, turns[1]]]
    assert out["choices"][0]["message"]["content"] == "You said: I want to"  # no disclaimer, no screen
    assert out["safety"] is None and out["choices"][0]["finish_reason"] == "length"
    assert client.get("/api/config").status_code == 404 and client.get("/").status_code == 404


def test_stop_strings_and_max_completion_tokens(serve: Serve, policy: SafetyPolicy) -> None:
    client = serve()
    out = client.post(URL, json=_user("Mild cough since Monday", stop=["Monday"])).json()
    assert out["choices"][0]["message"]["content"] == "You said: Mild cough since " + "\n\n" + policy.disclaimer("en")
    out = client.post(URL, json=_user("Mild cough", max_tokens=500, max_completion_tokens=3)).json()
    assert out["choices"][0]["message"]["content"].startswith("You said: Mild\n\n")
    assert out["usage"]["completion_tokens"] == 3 and out["choices"][0]["finish_reason"] == "length"


def test_models_and_health(serve: Serve) -> None:
    client = serve(served_name="family-doctor")
    models = client.get("/v1/models").json()
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == ["family-doctor"]
    assert models["data"][0]["owned_by"] == "mmedkit"
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["model"] == "family-doctor" and health["safety"] is True
    assert health["backend"] == {"model": "echo-doctor", "slots": 1}
    assert health["queue"]["slots"] == 1 and health["queue"]["max_waiting"] == 8


# ---------------------------------------------------------------- limits and hardening
@pytest.mark.parametrize(("body", "message"), [
    ({"messages": [{"role": "user", "content": "hi"}] * 41}, "too many messages: 41 (limit 40)"),
    (_user("x" * 8001), "messages.0.content: 8001 characters (limit 8000)"),
    (_user("cough", max_tokens=100_000), "max_tokens: 100000 is over this server's limit (512)"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.role: 'tool' is not one of system, developer"),
    ({"messages": [{"role": "system", "content": "x"}]}, "needs a non-empty user message"),
    ({"messages": []}, "messages"),
    (_user("cough", n=2), "only n=1 is supported"),
    (_user("cough", logprobs=True), "logprobs are not supported on chat completions"),
    (_user("cough", temperature=3), "body.temperature"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "only text message content"),
])
def test_request_limits(serve: Serve, body: dict, message: str) -> None:
    resp = serve().post(URL, json=body)
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert message in error["message"] and error["type"] == "invalid_request_error" and error["code"] == 400


def test_body_size_limit(serve: Serve) -> None:
    client = serve()
    big = json.dumps(_user("a" * 70_000)).encode()
    resp = client.post(URL, content=big, headers={"Content-Type": "application/json"})
    assert resp.status_code == 413 and "larger than 65536 bytes" in resp.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
        for i in range(0, len(big), 8192):
            yield big[i:i + 8192]

    resp = client.post(URL, content=chunks(), headers={"Content-Type": "application/json"})
    assert resp.status_code == 413


def test_cors_is_closed_by_default(serve: Serve) -> None:
    client = serve()
    pre = client.options(URL, headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST",
                                       "Access-Control-Request-Headers": "content-type"})
    assert "access-control-allow-origin" not in pre.headers
    post = client.post(URL, json=_user("cough", max_tokens=1), headers={"Origin": "http://evil.example"})
    assert post.status_code == 200 and "access-control-allow-origin" not in post.headers


def test_host_header_is_checked_on_loopback(serve: Serve) -> None:
    client = serve()
    assert client.get("/healthz", headers={"Host": "attacker.example"}).status_code == 400
    assert client.get("/healthz", headers={"Host": "localhost:8000"}).status_code == 200
    assert serve(allowed_hosts=None).get("/healthz", headers={"Host": "attacker.example"}).status_code == 200


def test_page_files_and_security_headers(serve: Serve, policy: SafetyPolicy) -> None:
    client = serve(ModelBackend(EchoDoctor(), notice="A demo model: its answers are not meaningful."))
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["x-frame-options"] == "DENY"
    assert 'src="/static/app.js"' in page.text and "<script>" not in page.text  # no inline script
    script = client.get("/static/app.js")
    assert "cache-control" not in script.headers and "content-security-policy" in script.headers
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script.text  # model text only ever becomes text nodes
    assert client.get("/static/style.css").status_code == 200
    cfg = client.get("/api/config").json()
    assert [lang["code"] for lang in cfg["languages"]] == ["en", "zh", "ja", "fr", "ru", "es"]
    assert set(cfg["ui"]) == set(policy.languages) and cfg["ui"]["ja"]["send"] == "送信"
    assert cfg["notice"] == "A demo model: its answers are not meaningful." and cfg["model"] == "echo-doctor"
    assert cfg["auth_required"] is False and cfg["disclaimers"]["zh"] == policy.disclaimer("zh")
    assert cfg["safety"] is True
    assert cfg["limits"] == {"max_message_chars": 8000, "max_messages": 40, "max_tokens": 512}


def test_nothing_is_written_without_a_conversation_log(serve: Serve, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.DEBUG)
    client = serve()
    client.post(URL, json=_user("I have a cough", max_tokens=2))
    client.post(URL, json=_user("I want to kill myself"))
    assert list(tmp_path.iterdir()) == []
    assert "cough" not in caplog.text and "kill myself" not in caplog.text


# ---------------------------------------------------------------- key, CORS origin, queue, timeout, log
def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}"}


def test_api_key(serve: Serve) -> None:
    client = serve(api_key=KEY)
    refused = client.get("/v1/models")
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert refused.json()["error"] == {"message": "invalid or missing API key", "type": "authentication_error",
                                       "param": None, "code": 401}
    assert client.post(URL, json=_user("cough", max_tokens=1), headers={"Authorization": "Bearer nope"}).status_code \
        == 401
    assert client.post(URL, json=_user("cough", max_tokens=1), headers={"Authorization": KEY}).status_code == 401
    assert client.get("/v1/models", headers=_auth()).status_code == 200
    assert client.post(URL, json=_user("cough", max_tokens=1), headers=_auth()).status_code == 200
    assert client.get("/api/config").json()["auth_required"] is True
    assert client.get("/healthz").status_code == 200


def test_cors_for_a_named_origin_only(serve: Serve) -> None:
    client = serve(api_key=KEY, cors_origins=(ALLOWED,))

    def preflight(origin: str) -> dict[str, str]:
        return client.options(URL, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                            "Access-Control-Request-Headers": "authorization,content-type"}).headers

    assert preflight(ALLOWED).get("access-control-allow-origin") == ALLOWED
    assert "access-control-allow-origin" not in preflight("http://evil.example")
    answer = client.post(URL, json=_user("cough", max_tokens=1), headers={**_auth(), "Origin": ALLOWED})
    assert answer.headers["access-control-allow-origin"] == ALLOWED


def test_strict_limits(serve: Serve) -> None:
    client = serve(max_messages=6, max_body_bytes=8 * 1024)
    seven = {"messages": [{"role": "user", "content": "cough"}] * 7}
    assert client.post(URL, json=seven).status_code == 400
    assert client.post(URL, json=_user("a" * 9000)).status_code == 413


def test_full_queue_answers_429_and_slow_answers_time_out(serve: Serve) -> None:
    slow = ModelBackend(EchoDoctor(ramble=True), delay=0.01)  # 300 words: 3 s, over the 1 s timeout
    client = serve(slow, queue_size=1, request_timeout=1.0)
    long_body = _user("Sore throat", max_tokens=300)
    results: dict[str, object] = {}

    def streamed() -> None:
        results["a"] = _stream(client, long_body)

    def waiting() -> None:
        results["b"] = client.post(URL, json=long_body)

    def queue() -> dict:
        return client.get("/healthz").json()["queue"]

    a = threading.Thread(target=streamed)
    a.start()
    deadline = time.monotonic() + 10
    while queue()["running"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    b = threading.Thread(target=waiting)
    b.start()
    while queue()["waiting"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    refused = [client.post(URL, json=long_body) for _ in range(2)]
    a.join(30)
    b.join(30)
    for resp in refused:  # the one slot and the one waiting place are taken: refused at once
        assert resp.status_code == 429
        assert int(resp.headers["retry-after"]) >= 1
        assert resp.json()["error"]["type"] == "rate_limit_error"
    events = results["a"]
    assert isinstance(events, list) and events[-1] == "[DONE]"
    assert events[-2]["error"] == {"message": "the answer took longer than the request timeout",
                                   "type": "server_error", "param": None, "code": 503}
    waited = results["b"]  # timed out waiting, or just after it got the slot
    assert waited.status_code == 503 and int(waited.headers["retry-after"]) >= 1
    health = client.get("/healthz").json()
    assert health["queue"]["running"] == 0 and health["queue"]["waiting"] == 0
    assert health["queue"]["refused"] == 2 and health["queue"]["timed_out"] + health["timeouts"] == 2
    ok = client.post(URL, json=_user("cough", max_tokens=2))
    assert ok.status_code == 200  # not hung


def test_a_non_streamed_answer_over_the_timeout_is_503(serve: Serve) -> None:
    client = serve(ModelBackend(EchoDoctor(ramble=True), delay=0.01), request_timeout=0.3)
    resp = client.post(URL, json=_user("Sore throat", max_tokens=300))
    assert resp.status_code == 503 and int(resp.headers["retry-after"]) >= 1
    assert resp.json()["error"]["message"] == "the answer took longer than the request timeout (0.3 s)"
    health = client.get("/healthz").json()
    assert health["timeouts"] == 1 and health["queue"]["running"] == 0


def test_a_backend_failure_is_a_clear_error(serve: Serve) -> None:
    client = serve(ModelBackend(EchoDoctor(context=150)))
    assert client.post(URL, json=_user("My cough")).status_code == 200
    long = _user("My cough " * 100)
    resp = client.post(URL, json=long)
    assert resp.status_code == 400 and "more than the model's context (150 tokens)" in resp.json()["error"]["message"]
    events = _stream(client, long)
    assert "more than the model's context" in events[-2]["error"]["message"] and events[-1] == "[DONE]"
    health = client.get("/healthz").json()
    assert health["errors"] == 2 and health["generations"] == 3 and health["queue"]["running"] == 0


def test_conversation_log_when_enabled(serve: Serve, tmp_path: Path) -> None:
    path = tmp_path / "logs" / "conversations.jsonl"
    client = serve(conversation_log=path)
    client.post(URL, json=_user("Mal de gorge depuis hier", max_tokens=3))
    client.post(URL, json=_user("Je veux me suicider"))
    _stream(client, {"messages": [{"role": "system", "content": "secret"}, {"role": "user", "content": "Toux"}]})
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 3
    assert records[0]["messages"] == [{"role": "user", "content": "Mal de gorge depuis hier"}]
    assert records[0]["safety"]["language"] == "fr" and records[0]["answer"].startswith("You said: Mal")
    assert records[1]["safety"]["red_flag"] == "suicide" and "3114" in records[1]["answer"]
    assert records[2]["messages"] == [{"role": "user", "content": "Toux"}]  # system messages are not logged
    assert records[2]["model"] == "echo-doctor" and records[2]["id"].startswith("chatcmpl-")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
