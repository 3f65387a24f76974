"""Smoke test of the real thing: `python -m mmedkit.serve` (uvicorn) as a child process on 127.0.0.1 with the
tiny model, driven by the official `openai` client and plain HTTP. Everything else is tested in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_process import ServerProcess

from mmedkit.serve.safety import SafetyPolicy
from mmedkit.serve.upstream import discover_model


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("serve-smoke")
    (root / "cwd").mkdir()
    with ServerProcess(["--model", str(tiny_model_dir), "--device", "cpu", "--dtype", "float32"],
                       root / "server.log", cwd=root / "cwd") as s:
        s.cwd = root / "cwd"  # type: ignore[attr-defined]
        yield s


def test_official_openai_client(server: ServerProcess, policy: SafetyPolicy) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0)
    models = client.models.list()
    assert [m.id for m in models.data] == [httpx.get(f"{server.base}/healthz").json()["model"]]
    assert discover_model(server.url) == models.data[0].id  # what `mmed serve --upstream` asks first
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


def test_page_host_check_and_nothing_written(server: ServerProcess) -> None:
    page = httpx.get(f"{server.base}/")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert "server" not in page.headers  # no server banner
    assert httpx.get(f"{server.base}/static/app.js").status_code == 200
    assert "not meaningful" in httpx.get(f"{server.base}/api/config").json()["notice"]  # the tiny model is flagged
    assert httpx.get(f"{server.base}/healthz", headers={"Host": "attacker.example"}).status_code == 400
    assert httpx.get(f"http://localhost:{server.port}/healthz").status_code == 200
    for text in ("I have a cough", "I want to kill myself"):
        body = {"messages": [{"role": "user", "content": text}], "max_tokens": 2}
        assert httpx.post(f"{server.url}/chat/completions", json=body, timeout=30).status_code == 200
    assert list(server.cwd.iterdir()) == []  # type: ignore[attr-defined]
    assert "cough" not in server.log_tail(100_000) and "kill myself" not in server.log_tail(100_000)
