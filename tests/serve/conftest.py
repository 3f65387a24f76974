"""Fixtures of the serving tests: the shipped safety policy, and the service in-process over the fake model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from serve_fakes import EchoDoctor, ModelBackend, Serve
from starlette.testclient import TestClient

from mmedkit.serve.app import create_app
from mmedkit.serve.backends import ChatBackend
from mmedkit.serve.safety import SafetyPolicy
from mmedkit.serve.settings import ServeConfig, default_allowed_hosts


@pytest.fixture(scope="session")
def policy() -> SafetyPolicy:
    return SafetyPolicy.load()


@pytest.fixture
def serve(policy: SafetyPolicy) -> Iterator[Serve]:
    """``serve(backend=None, safety=True, **config)``: a started TestClient on 127.0.0.1, as ``mmed serve`` binds.

    The default backend is :class:`EchoDoctor` behind :class:`ModelBackend`; ``config`` are
    :class:`ServeConfig` fields (loopback ``Host`` names unless ``allowed_hosts`` is given).
    """
    clients: list[TestClient] = []

    def start(backend: ChatBackend | None = None, *, safety: bool = True, **config: object) -> TestClient:
        config.setdefault("allowed_hosts", default_allowed_hosts("127.0.0.1"))
        app = create_app(backend or ModelBackend(EchoDoctor()), ServeConfig(**config), policy if safety else None)
        client = TestClient(app, base_url="http://127.0.0.1")
        clients.append(client.__enter__())
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)
