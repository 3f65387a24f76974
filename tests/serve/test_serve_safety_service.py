"""The safety layer inside the service: a whole conversation is screened, the extension says why, the
screen keeps to its time budget, and the emergency answer goes out even when logging fails."""

from __future__ import annotations

from pathlib import Path

from serve_fakes import EchoDoctor, ModelBackend, Serve

from mmedkit.serve.safety import SafetyPolicy

URL = "/v1/chat/completions"


def _conversation(*turns: str) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for t in turns:
        if out:
            out.append({"role": "assistant", "content": "I see. Anything else?"})
        out.append({"role": "user", "content": t})
    return out


def test_symptoms_of_earlier_turns_combine_with_the_latest(serve: Serve, policy: SafetyPolicy) -> None:
    backend = ModelBackend(EchoDoctor())
    client = serve(backend)
    first = client.post(URL, json={"messages": _conversation("Mi padre tiene una presión en el pecho")}).json()
    assert first["safety"]["red_flag"] is None  # one symptom: the model answers
    messages = _conversation("Mi padre tiene una presión en el pecho", "Y ahora está sudando frío", "¿Qué hago?")
    out = client.post(URL, json={"messages": messages, "language": "en"}).json()
    assert out["safety"]["red_flag"] == "cardiac" and out["safety"]["turn"] == 2
    assert "pecho" in out["safety"]["evidence"] and "sudando frio" in out["safety"]["evidence"]
    assert out["safety"]["language"] == "es"
    assert out["choices"][0]["message"]["content"] == policy.emergency_message("cardiac", "es")
    assert len(backend.prompts) == 1  # the emergency never reached the model


def test_the_screen_keeps_to_its_time_budget(serve: Serve) -> None:
    backend = ModelBackend(EchoDoctor())
    client = serve(backend, safety_timeout=1e-6)
    resp = client.post(URL, json={"messages": _conversation("I have a mild cough " * 300)})
    assert resp.status_code == 503 and "safety screen" in resp.json()["error"]["message"]
    assert resp.headers["Retry-After"] == "5"
    assert backend.prompts == []  # nothing goes to the model unscreened


def test_the_emergency_answer_survives_a_broken_log(serve: Serve, policy: SafetyPolicy, tmp_path: Path) -> None:
    log = tmp_path / "conversations.jsonl"
    client = serve(conversation_log=log)
    log.mkdir()  # the log cannot be written: it is a folder now
    out = client.post(URL, json={"messages": _conversation("My wife collapsed and isn't responding")})
    assert out.status_code == 200
    assert out.json()["choices"][0]["message"]["content"] == policy.emergency_message("unconscious", "en")
