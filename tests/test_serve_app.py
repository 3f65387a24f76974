"""`mmed serve` as a real server process on 127.0.0.1 with the tiny model: API, safety layer,
limits, queue, timeouts, API key, CORS, Host check, conversation log, the page's files, and the
official `openai` client."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mmedkit.serve.process import ServerProcess
from mmedkit.serve.safety import SafetyPolicy

KEY_ENV = "MMED_SERVE_TEST_KEY"
KEY = "sk-serve-test-4b1e"
ALLOWED = "http://clinic.example"


@pytest.fixture(scope="module")
def policy() -> SafetyPolicy:
    return SafetyPolicy.load()


@pytest.fixture(scope="module")
def open_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("serve-open")
    (root / "cwd").mkdir()
    with ServerProcess(["--model", str(tiny_model_dir), "--device", "cpu", "--dtype", "float32"],
                       root / "server.log", cwd=root / "cwd") as server:
        server.cwd = root / "cwd"  # type: ignore[attr-defined]
        yield server


@pytest.fixture(scope="module")
def strict_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("serve-strict")
    args = ["--model", str(tiny_model_dir), "--device", "cpu", "--dtype", "float32", "--api-key-env", KEY_ENV,
            "--cors-origin", ALLOWED, "--queue-size", "1", "--timeout", "1", "--max-tokens", "4000",
            "--max-messages", "6", "--max-body-kb", "8", "--log-conversations", str(root / "conversations.jsonl")]
    with ServerProcess(args, root / "server.log", env={KEY_ENV: KEY}) as server:
        server.convlog = root / "conversations.jsonl"  # type: ignore[attr-defined]
        yield server


def _user(text: str, **extra: object) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": text}], **extra}


def _events(resp: httpx.Response) -> list[dict | str]:
    out: list[dict | str] = []
    for line in resp.iter_lines():
        if line.startswith("data: "):
            data = line[len("data: "):]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def _stream(url: str, body: dict, headers: dict | None = None, timeout: float = 60) -> list[dict | str]:
    with httpx.stream("POST", url, json={**body, "stream": True}, headers=headers, timeout=timeout) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"].startswith("text/event-stream")
        return _events(resp)


def _health(server: ServerProcess) -> dict:
    return httpx.get(f"{server.base}/healthz", timeout=5).json()


# ---------------------------------------------------------------- answers and the safety layer
def test_answer_ends_with_the_disclaimer_in_the_users_language(open_server: ServerProcess,
                                                                policy: SafetyPolicy) -> None:
    body = _user("Mal de gorge et éternuements depuis hier, est-ce un rhume ?", max_tokens=24, temperature=0)
    out = httpx.post(f"{open_server.url}/chat/completions", json=body, timeout=60).json()
    content = out["choices"][0]["message"]["content"]
    assert content.endswith("\n\n" + policy.disclaimer("fr"))
    assert len(content) > len(policy.disclaimer("fr")) + 2  # the model's answer comes first
    assert out["safety"] == {"language": "fr", "red_flag": None, "notes": ["disclaimer"]}
    assert out["usage"]["completion_tokens"] <= 24 and out["usage"]["prompt_tokens"] > 50
    assert out["choices"][0]["finish_reason"] in ("stop", "length")


def test_streams_token_by_token_then_the_disclaimer(open_server: ServerProcess, policy: SafetyPolicy) -> None:
    body = _user("У меня болит горло и насморк, это простуда?", max_tokens=48, temperature=1.0,
                 stream_options={"include_usage": True})
    events = _stream(f"{open_server.url}/chat/completions", body)
    assert events[-1] == "[DONE]"
    chunks = [e for e in events if isinstance(e, dict)]
    assert chunks[0]["safety"]["language"] == "ru" and chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    model_pieces = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content") and "part" not in c]
    assert len(model_pieces) > 3
    appended = [c for c in chunks if "part" in c]
    assert [c["part"] for c in appended] == ["disclaimer"]
    assert appended[0]["choices"][0]["delta"]["content"] == "\n\n" + policy.disclaimer("ru")
    assert chunks[-1]["usage"]["completion_tokens"] <= 48


@pytest.mark.parametrize(("text", "lang", "category"), [
    ("I have crushing chest pain and I can't breathe", "en", "cardiac"),
    ("生後1ヶ月の赤ちゃんが38度の熱があります", "ja", "infant_fever"),
    ("Mi padre tiene la boca torcida y habla arrastrada", "es", "stroke"),
])
def test_red_flags_are_answered_at_once_without_the_model(open_server: ServerProcess, policy: SafetyPolicy,
                                                          text: str, lang: str, category: str) -> None:
    before = _health(open_server)
    url = f"{open_server.url}/chat/completions"
    start = time.monotonic()
    out = httpx.post(url, json=_user(text, language="en"), timeout=30).json()
    events = _stream(url, _user(text, language="en"))
    elapsed = time.monotonic() - start
    want = policy.emergency_message(policy.screen(text), lang)
    assert out["choices"][0]["message"]["content"] == want
    assert out["safety"] == {"language": lang, "red_flag": category, "notes": []}
    assert events[0]["safety"]["red_flag"] == category
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events if isinstance(e, dict)) == want
    after = _health(open_server)
    assert after["generations"] == before["generations"]  # no model call
    assert after["red_flags"] == before["red_flags"] + 2
    assert elapsed < 5


def test_negated_symptom_goes_to_the_model(open_server: ServerProcess) -> None:
    before = _health(open_server)["generations"]
    out = httpx.post(f"{open_server.url}/chat/completions", json=_user("нет боли в груди, просто кашель",
                                                                       max_tokens=4), timeout=30).json()
    assert out["safety"]["red_flag"] is None
    assert _health(open_server)["generations"] == before + 1


# ---------------------------------------------------------------- limits and hardening
@pytest.mark.parametrize(("body", "status", "message"), [
    ({"messages": [{"role": "user", "content": "hi"}] * 41}, 400, "too many messages: 41 (limit 40)"),
    (_user("x" * 8001), 400, "messages.0.content: 8001 characters (limit 8000)"),
    (_user("cough", max_tokens=100_000), 400, "over this server's limit (512)"),
    ({"messages": [{"role": "tool", "content": "x"}]}, 400, "messages.0.role"),
    ({"messages": [{"role": "system", "content": "x"}]}, 400, "needs a non-empty user message"),
    ({"messages": []}, 400, "messages"),
])
def test_request_limits(open_server: ServerProcess, body: dict, status: int, message: str) -> None:
    resp = httpx.post(f"{open_server.url}/chat/completions", json=body, timeout=30)
    assert resp.status_code == status
    assert message in resp.json()["error"]["message"]


def test_body_size_limit(open_server: ServerProcess) -> None:
    big = json.dumps(_user("a" * 70_000)).encode()
    resp = httpx.post(f"{open_server.url}/chat/completions", content=big,
                      headers={"Content-Type": "application/json"}, timeout=30)
    assert resp.status_code == 413 and "larger than 65536 bytes" in resp.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
        for i in range(0, len(big), 8192):
            yield big[i:i + 8192]

    resp = httpx.post(f"{open_server.url}/chat/completions", content=chunks(),
                      headers={"Content-Type": "application/json"}, timeout=30)
    assert resp.status_code == 413


def test_cors_is_closed_by_default(open_server: ServerProcess) -> None:
    pre = httpx.options(f"{open_server.url}/chat/completions", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert "access-control-allow-origin" not in pre.headers
    post = httpx.post(f"{open_server.url}/chat/completions", json=_user("cough", max_tokens=1),
                      headers={"Origin": "http://evil.example"}, timeout=30)
    assert "access-control-allow-origin" not in post.headers


def test_host_header_is_checked_on_loopback(open_server: ServerProcess) -> None:
    assert httpx.get(f"{open_server.base}/healthz", headers={"Host": "attacker.example"}).status_code == 400
    assert httpx.get(f"http://localhost:{open_server.port}/healthz").status_code == 200


def test_page_files_and_security_headers(open_server: ServerProcess, policy: SafetyPolicy) -> None:
    page = httpx.get(f"{open_server.base}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["cache-control"] == "no-store"
    assert 'src="/static/app.js"' in page.text and "<script>" not in page.text  # no inline script
    script = httpx.get(f"{open_server.base}/static/app.js").text
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script  # model text only ever becomes text nodes
    assert httpx.get(f"{open_server.base}/static/style.css").status_code == 200
    cfg = httpx.get(f"{open_server.base}/api/config").json()
    assert [lang["code"] for lang in cfg["languages"]] == ["en", "zh", "ja", "fr", "ru", "es"]
    assert set(cfg["ui"]) == set(policy.languages) and cfg["ui"]["ja"]["send"] == "送信"
    assert "not meaningful" in cfg["notice"]  # the tiny model is flagged on the page
    assert cfg["auth_required"] is False and cfg["disclaimers"]["zh"] == policy.disclaimer("zh")


def test_nothing_is_written_without_a_conversation_log(open_server: ServerProcess) -> None:
    httpx.post(f"{open_server.url}/chat/completions", json=_user("I have a cough", max_tokens=2), timeout=30)
    httpx.post(f"{open_server.url}/chat/completions", json=_user("I want to kill myself"), timeout=30)
    assert list(open_server.cwd.iterdir()) == []  # type: ignore[attr-defined]
    assert "kill myself" not in open_server.log_tail(100_000)


# ---------------------------------------------------------------- official openai client
def test_official_openai_client(open_server: ServerProcess, policy: SafetyPolicy) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=open_server.url, api_key="unused", max_retries=0)
    models = client.models.list()
    assert [m.id for m in models.data] == [_health(open_server)["model"]]
    msgs = [{"role": "user", "content": "Tengo tos seca desde hace una semana, ¿debo ir al médico?"}]
    resp = client.chat.completions.create(model=models.data[0].id, messages=msgs, max_tokens=16, temperature=0)
    assert resp.choices[0].message.content.endswith(policy.disclaimer("es"))
    assert resp.model_extra["safety"]["language"] == "es"
    stream = client.chat.completions.create(model=models.data[0].id, messages=msgs, max_tokens=16, temperature=0,
                                            stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == resp.choices[0].message.content  # greedy: the same answer streamed
    msgs = [{"role": "user", "content": "没有胸痛，但是喘不过气来"}]
    flag = client.chat.completions.create(model="any", messages=msgs, extra_body={"language": "en"})
    assert flag.model_extra["safety"]["red_flag"] == "breathing"
    assert "120" in flag.choices[0].message.content


# ---------------------------------------------------------------- key, CORS origin, queue, timeout, log
def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}"}


def test_api_key(strict_server: ServerProcess) -> None:
    url = f"{strict_server.url}/chat/completions"
    assert httpx.get(f"{strict_server.url}/models").status_code == 401
    assert httpx.post(url, json=_user("cough", max_tokens=1), headers={"Authorization": "Bearer nope"}).status_code \
        == 401
    assert httpx.get(f"{strict_server.url}/models", headers=_auth()).status_code == 200
    assert httpx.post(url, json=_user("cough", max_tokens=1), headers=_auth(), timeout=30).status_code == 200
    assert httpx.get(f"{strict_server.base}/api/config").json()["auth_required"] is True
    assert httpx.get(f"{strict_server.base}/healthz").status_code == 200


def test_cors_for_a_named_origin_only(strict_server: ServerProcess) -> None:
    def preflight(origin: str) -> httpx.Response:
        return httpx.options(f"{strict_server.url}/chat/completions", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type"})

    assert preflight(ALLOWED).headers.get("access-control-allow-origin") == ALLOWED
    assert "access-control-allow-origin" not in preflight("http://evil.example").headers


def test_strict_limits(strict_server: ServerProcess) -> None:
    url = f"{strict_server.url}/chat/completions"
    seven = {"messages": [{"role": "user", "content": "cough"}] * 7}
    assert httpx.post(url, json=seven, headers=_auth()).status_code == 400
    assert httpx.post(url, json=_user("a" * 9000), headers=_auth()).status_code == 413


def test_full_queue_answers_429_and_slow_answers_time_out(strict_server: ServerProcess) -> None:
    url = f"{strict_server.url}/chat/completions"
    long_body = _user("Sore throat", max_tokens=3800, temperature=0)  # ~2 s of generation: over the 1 s timeout
    results: dict[str, object] = {}

    def streamed() -> None:
        results["a"] = _stream(url, long_body, headers=_auth())

    def waiting() -> None:
        results["b"] = httpx.post(url, json=long_body, headers=_auth(), timeout=30)

    a = threading.Thread(target=streamed)
    a.start()
    deadline = time.monotonic() + 10
    while _health(strict_server)["queue"]["running"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    b = threading.Thread(target=waiting)
    b.start()
    while _health(strict_server)["queue"]["waiting"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    refused = [httpx.post(url, json=long_body, headers=_auth(), timeout=5) for _ in range(2)]
    a.join(30)
    b.join(30)
    for resp in refused:  # the one slot and the one waiting place are taken: refused at once
        assert resp.status_code == 429
        assert int(resp.headers["retry-after"]) >= 1
        assert resp.json()["error"]["type"] == "rate_limit_error"
    events = results["a"]
    assert isinstance(events, list) and events[-1] == "[DONE]"
    assert "request timeout" in events[-2]["error"]["message"]
    assert results["b"].status_code == 503 and int(results["b"].headers["retry-after"]) >= 1
    health = _health(strict_server)
    assert health["queue"]["running"] == 0 and health["queue"]["waiting"] == 0
    ok = httpx.post(url, json=_user("cough", max_tokens=2), headers=_auth(), timeout=30)
    assert ok.status_code == 200  # not hung


def test_conversation_log_when_enabled(strict_server: ServerProcess) -> None:
    url = f"{strict_server.url}/chat/completions"
    httpx.post(url, json=_user("Mal de gorge depuis hier", max_tokens=3), headers=_auth(), timeout=30)
    httpx.post(url, json=_user("Je veux me suicider"), headers=_auth(), timeout=30)
    path: Path = strict_server.convlog  # type: ignore[attr-defined]
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    last_two = records[-2:]
    assert last_two[0]["messages"] == [{"role": "user", "content": "Mal de gorge depuis hier"}]
    assert last_two[0]["safety"]["language"] == "fr" and last_two[0]["answer"]
    assert last_two[1]["safety"]["red_flag"] == "suicide" and "3114" in last_two[1]["answer"]
    assert all(m["role"] != "system" for r in records for m in r["messages"])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
