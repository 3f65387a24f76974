"""Limits under abuse and bad input answered as clear errors (issue 15): Host names, secrets, deadlines,
stop lists, broken text."""

from __future__ import annotations

from pathlib import Path

import pytest
from serve_fakes import EchoDoctor, ModelBackend, Serve
from server_process import free_port

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
