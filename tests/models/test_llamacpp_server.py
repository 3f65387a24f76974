"""The openai backend, the judge and ``mmed serve --upstream`` against a real third-party server:
llama-cpp-python's OpenAI-compatible server over the embedded SmolLM2-135M-Instruct GGUF (Q4_1).

What this server does, as the probe finds it: text and chat completions and streaming work;
``max_tokens: 0`` means "no limit" (so scoring asks for 1 new token); its echoed prompt
log-probabilities are shifted by one token for this model (no BOS token), so log-likelihood mode
stops at the probe within seconds. The shift is shown against the local hf backend's own numbers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from llamacpp_server import MODEL_ALIAS, LlamaCppServer, require_llamacpp
from server_process import ServerProcess
from typer.testing import CliRunner

from mmedkit.bench.rationale.judge import JudgeConfig, judge_runs
from mmedkit.cli import app
from mmedkit.models.base import BackendError, LoglikelihoodRequest
from mmedkit.models.embedded import default_model_dir, gguf_path
from mmedkit.models.openai_backend import OpenAIModel
from mmedkit.models.openai_probe import NEEDS, probe

require_llamacpp()
pytestmark = pytest.mark.slow
runner = CliRunner()

ABS_TOL, REL_TOL = 0.05, 0.05
"""|llama.cpp - hf| per-token log-probability allowed: 0.05 + 5% of its size. llama.cpp computes with the Q4_1
weights and 8-bit activations, the hf backend with the same weights dequantized to float32; measured here on 34
tokens: at most 0.43 (mean 0.14) on log-probabilities of -8 to -17, 0.01-0.05 on greedy tokens (about -1.5)."""
TEXT = "A 54-year-old man presents with crushing chest pain radiating to the left arm and sweating."


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppServer]:
    s = LlamaCppServer(gguf_path(), tmp_path_factory.mktemp("llamacpp") / "server.log")
    try:
        yield s.wait_ready()
    finally:
        s.stop()


@pytest.fixture(scope="module")
def hf_logprobs() -> Any:
    """Per-position log-softmax of the embedded model through transformers (float32) and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = default_model_dir()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()

    def run(text: str) -> tuple[list[int], Any]:
        ids = tok(text, add_special_tokens=False).input_ids
        with torch.no_grad():
            return ids, model(torch.tensor([ids])).logits[0].float().log_softmax(-1)

    return run


def _completion(server: LlamaCppServer, **payload: Any) -> dict[str, Any]:
    resp = httpx.post(f"{server.url}/completions", json={"model": MODEL_ALIAS, "temperature": 0, **payload},
                      timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json()["choices"][0]


def test_probe_verdict(server: LlamaCppServer) -> None:
    report = probe(server.url, MODEL_ALIAS, NEEDS, timeout=60)
    print("\n" + report.verdict())
    checks = {c.name: c for c in report.checks}
    assert [c.name for c in report.checks] == ["completions", "chat", "stream", "max_tokens", "prompt_logprobs"]
    assert all(checks[n].ok for n in ("completions", "chat", "stream", "max_tokens")), report.verdict()
    assert "max_tokens 0 means no limit" in checks["max_tokens"].detail and report.score_tokens == 1
    assert not checks["prompt_logprobs"].ok and "not aligned" in checks["prompt_logprobs"].detail
    assert "use --mode generate" in report.verdict()


def test_echoed_logprobs_are_the_next_tokens_scores(server: LlamaCppServer, hf_logprobs: Any) -> None:
    """The probe's diagnosis checked against the local model's numbers (transformers, float32, the checkpoint the
    hf backend loads): the server gives prompt token i the log-probability computed *after* token i (the
    distribution for token i + 1) instead of before it, within the quantization's tolerance; its log-probability
    of a generated token is right."""
    ids, lp = hf_logprobs(TEXT)
    echo = _completion(server, prompt=TEXT, max_tokens=1, logprobs=1, echo=True)["logprobs"]
    n = len(ids)
    assert "".join(echo["tokens"][:n]) == TEXT and echo["token_logprobs"][0] is None
    served = echo["token_logprobs"][1:n]
    shifted = [float(lp[i, ids[i]]) for i in range(1, n)]
    correct = [float(lp[i - 1, ids[i]]) for i in range(1, n)]
    excess = max(abs(a - b) - REL_TOL * abs(b) for a, b in zip(served, shifted, strict=True))
    gap_correct = max(abs(a - b) for a, b in zip(served, correct, strict=True))
    print(f"\nllama.cpp vs hf, {n - 1} echoed tokens: max |diff| "
          f"{max(abs(a - b) for a, b in zip(served, shifted, strict=True)):.3f} against the shifted scores, "
          f"{gap_correct:.1f} against the correct ones")
    assert excess <= ABS_TOL and gap_correct > 5.0
    gen = _completion(server, prompt=TEXT, max_tokens=1, logprobs=1)["logprobs"]
    want = float(lp[n - 1].max())
    assert abs(gen["token_logprobs"][0] - want) <= ABS_TOL + REL_TOL * abs(want)


def test_loglikelihood_mode_stops_within_seconds_with_the_reason(server: LlamaCppServer, tmp_path: Path) -> None:
    start = time.monotonic()
    res = runner.invoke(app, ["bench", "run", "--backend", "openai", "--base-url", server.url, "--model", MODEL_ALIAS,
                              "--mode", "loglikelihood", "--data", "demo", "--limit", "2", "--out", str(tmp_path),
                              "--no-progress"])
    took = time.monotonic() - start
    assert res.exit_code == 2, res.output
    assert "not aligned with the prompt's tokens" in res.output and "use --mode generate" in res.output
    assert took < 30
    with OpenAIModel(MODEL_ALIAS, base_url=server.url) as model, pytest.raises(BackendError, match="not aligned"):
        model.loglikelihood([LoglikelihoodRequest("The patient has", (" fever",))])


@pytest.fixture(scope="module")
def generated(server: LlamaCppServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Greedy generate-mode runs on two demo items (English, Spanish): llama.cpp with the chat and the study
    prompt (16 new tokens), and the local hf backend with the chat prompt (8 new tokens)."""
    root = tmp_path_factory.mktemp("generate")
    common = ["--mode", "generate", "--data", "demo", "--langs", "en,es", "--limit", "1", "--no-progress"]
    served = ["--backend", "openai", "--base-url", server.url, "--model", MODEL_ALIAS, "--max-new-tokens", "16"]
    runs = {"llamacpp-chat": [*served, "--format", "chat"], "llamacpp-study": served,
            "hf-chat": ["--model", str(default_model_dir()), "--dtype", "float32", "--device", "cpu",
                        "--format", "chat", "--max-new-tokens", "8"]}
    for name, args in runs.items():
        res = runner.invoke(app, ["bench", "run", *args, *common, "--out", str(root / name)])
        assert res.exit_code == 0, res.output
    return {name: root / name for name in runs}


def _samples(run: Path) -> dict[str, dict[str, Any]]:
    lines = (run / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    return {s["id"]: s for s in map(json.loads, lines)}


def test_generate_mode_against_the_local_model(generated: dict[str, Path]) -> None:
    """Greedy decoding through the server continues what the local model generates (Q4_1 vs float32)."""
    served, local = _samples(generated["llamacpp-chat"]), _samples(generated["hf-chat"])
    assert served.keys() == local.keys() and len(served) == 2
    details = json.loads((generated["llamacpp-chat"] / "results.json").read_text(encoding="utf-8"))["model"]["details"]
    assert details["probe"]["chat"]["checks"][0]["ok"] and details["requests"]["failures"] == {}
    assert details["requests"]["answered"] == 2
    assert all(s["output"] for s in served.values())
    assert all(served[i]["output"].startswith(local[i]["output"]) for i in served), (served, local)
    study = _samples(generated["llamacpp-study"])
    assert study.keys() == served.keys() and all(s["prompt"] != served[i]["prompt"] for i, s in study.items())


def test_judge_through_the_server(server: LlamaCppServer, generated: dict[str, Path], tmp_path: Path) -> None:
    pair = [generated["llamacpp-chat"], generated["hf-chat"]]  # the English outputs differ: 16 vs 8 tokens
    cfg = JudgeConfig(judge_model=MODEL_ALIAS, verdict="generate", max_new_tokens=8, bootstrap=50, langs="en",
                      include_reference=False, model_options={"base_url": server.url})
    summary = judge_runs(pair, tmp_path / "judge", cfg)
    c = summary["counts"]
    assert c["pairs"] == c["judged_pairs"] == 1 and c["asked_this_run"] == 2
    assert (tmp_path / "judge" / "judge.md").is_file()
    ll = JudgeConfig(judge_model=MODEL_ALIAS, verdict="loglikelihood", langs="en",
                     model_options={"base_url": server.url, "tokenizer": str(default_model_dir())})
    with pytest.raises(BackendError, match="not aligned"):
        judge_runs(pair, tmp_path / "judge-ll", ll)


def test_mmed_serve_in_front_of_the_server(server: LlamaCppServer, tmp_path: Path) -> None:
    with ServerProcess(["--upstream", server.url], tmp_path / "serve.log") as front:
        reply = httpx.post(f"{front.url}/chat/completions", timeout=60, json={
            "model": MODEL_ALIAS, "max_tokens": 16, "messages": [{"role": "user", "content": "What is a fever?"}]})
        assert reply.status_code == 200, reply.text
        assert reply.json()["choices"][0]["message"]["content"]
        with httpx.stream("POST", f"{front.url}/chat/completions", timeout=60, json={
                "model": MODEL_ALIAS, "max_tokens": 8, "stream": True,
                "messages": [{"role": "user", "content": "¿Qué es la fiebre?"}]}) as resp:
            events = [line for line in resp.iter_lines() if line.startswith("data: ")]
        assert events[-1] == "data: [DONE]" and len(events) > 2


def test_mmed_serve_stops_at_start_up_when_the_upstream_refuses(tmp_path: Path) -> None:
    keyed = LlamaCppServer(gguf_path(), tmp_path / "keyed.log", api_key="sk-llamacpp-31f")
    try:
        keyed.wait_ready()
        start = time.monotonic()
        res = runner.invoke(app, ["serve", "--upstream", keyed.url, "--upstream-model", MODEL_ALIAS])
        assert res.exit_code == 2, res.output
        assert "HTTP 401" in res.output and "--api-key-env" in res.output
        assert time.monotonic() - start < 10
    finally:
        keyed.stop()
