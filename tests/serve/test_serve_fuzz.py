"""Fuzzing the chat request schema (hypothesis): any body gets an answer or a clear 4xx error in the OpenAI
shape naming the place, never a 500."""

from __future__ import annotations

import json

import pytest
from serve_fakes import EchoDoctor, ModelBackend
from starlette.testclient import TestClient

from mmedkit.serve.app import create_app
from mmedkit.serve.safety import SafetyPolicy
from mmedkit.serve.settings import ServeConfig

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is not installed: pip install -e '.[test]'")
st = pytest.importorskip("hypothesis.strategies")

URL = "/v1/chat/completions"
TEXT = st.text(max_size=30) | st.sampled_from(["\ud800", "cough \udfff", "chest pain and I can't breathe", "<b>x</b>",
                                               "😀" * 3, ""])
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=10)
MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "assistant", "tool", "", "developer"])
                                 | JSON, "content": TEXT | st.lists(st.fixed_dictionaries(
                                     {"type": st.sampled_from(["text", "image_url"]) | JSON, "text": TEXT | JSON}),
                                     max_size=2) | JSON})
BODY = st.fixed_dictionaries(
    {"messages": st.lists(MESSAGE, max_size=3) | JSON},
    optional={"max_tokens": st.integers(-2, 12) | JSON, "temperature": st.floats() | JSON,
              "stop": TEXT | st.lists(TEXT, max_size=20) | JSON, "stream": st.booleans() | JSON, "n": JSON,
              "stream_options": st.fixed_dictionaries({"include_usage": JSON}) | JSON, "language": TEXT | JSON,
              "logprobs": JSON, "max_completion_tokens": JSON})
SETTINGS = hypothesis.settings(max_examples=200, deadline=None, derandomize=True,
                               suppress_health_check=[hypothesis.HealthCheck.too_slow])


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = create_app(ModelBackend(EchoDoctor()), ServeConfig(max_tokens=12, default_max_tokens=4, page=False),
                     SafetyPolicy.load())
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        yield c


def _check(client: TestClient, content: bytes) -> None:
    resp = client.post(URL, content=content, headers={"Content-Type": "application/json"})
    assert resp.status_code in (200, 400), resp.text
    if resp.status_code == 400:
        error = resp.json()["error"]
        assert error["type"] == "invalid_request_error" and error["message"].strip()
    elif resp.headers["content-type"].startswith("text/event-stream"):
        events = [line[6:] for line in resp.text.splitlines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]" and not any('"error"' in e for e in events), resp.text
    else:
        assert resp.json()["choices"][0]["message"]["content"]


@SETTINGS
@hypothesis.given(BODY)
def test_any_chat_request_is_answered_or_refused_clearly(client: TestClient, body: dict) -> None:
    _check(client, json.dumps(body).encode())


@SETTINGS
@hypothesis.given(JSON.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=80))
def test_any_body_is_answered_or_refused_clearly(client: TestClient, content: bytes) -> None:
    _check(client, content)
