"""The study's evaluation protocol: strict scoring as its released scripts do, and `--protocol study` runs."""

from __future__ import annotations

import pytest

from mmedkit.bench.extract import extract_answer, study_response, study_strict

OPTS = {"A": "Le foie", "B": "Le pancréas", "C": "La rate", "D": "Le rein"}


def _strict(text: str, gold: str) -> frozenset[str] | None:
    return study_strict(text, OPTS, frozenset(gold.split(","))).letters


@pytest.mark.parametrize(("text", "gold", "expected"), [
    ("###Answer: OPTION B IS CORRECT.", "B", "B"),
    ("###Answer: OPTION B IS CORRECT.</s>", "B", "B"),
    ("###Answer: OPTION B IS CORRECT.<|end_of_text|>", "B", "B"),
    ("\n###Answer: OPTION B IS CORRECT.\n", "B", "B"),
    ("###Answer: OPTION C,A IS CORRECT.", "A,C", "A,C"),
    ("###Answer: OPTION A,C,A IS CORRECT.", "A,C", "A,C"),
    ("###Answer: OPTION B,B IS CORRECT.", "B", None),
    ("###Answer: OPTION A, C IS CORRECT.", "A,C", None),  # a space after the comma: the study's split fails
    ("###Answer: OPTION B IS CORRECT. Because the pancreas ...", "B", None),
    ("The correct answer is B.", "B", None),
    ("B", "B", "B"),
    ("###Answer: OPTION b IS CORRECT.", "B", None),
    ("###Answer: OPTION B IS CORRECT.\n\n### Instruction:\n...### Response:###Answer: OPTION C IS CORRECT.", "B",
     None),
    ("###Answer: OPTION B IS CORRECT.### Response: more", "B", "B"),
])
def test_strict_reading_follows_the_study_scripts(text: str, gold: str, expected: str | None) -> None:
    got = _strict(text, gold)
    assert got == (frozenset(expected.split(",")) if expected else None)


def test_strict_is_stricter_than_the_cascade() -> None:
    text = "The correct answer is B."
    assert extract_answer(text, OPTS, "fr").letters == frozenset("B")
    assert study_strict(text, OPTS, frozenset("B")).rule == "none"
    assert study_response("###Answer: OPTION A,C IS CORRECT.</s>") == "A,C"


class Scripted:
    """A model that answers every item with its gold letter in the study's form, in words, or not at all."""

    backend_name = "scripted"
    tokens_computed = None  # the engine's timing reads it (LanguageModel: counted by the hf backend only)

    def __init__(self, items) -> None:
        self.gold = {it.question: it for it in items}
        self.requests: list = []

    def _item(self, prompt: str):
        return next(it for q, it in self.gold.items() if f"###Question: {q} " in prompt)

    def generate(self, requests, *, progress=None):
        from mmedkit.bench.items import format_answer

        self.requests += requests
        outs = []
        for i, r in enumerate(requests):
            gold = format_answer(self._item(r.prompt).answer)
            outs.append([f"###Answer: OPTION {gold} IS CORRECT.", f"The correct answer is {gold}.", "?"][i % 3])
        return outs

    def loglikelihood(self, requests, *, progress=None):
        from mmedkit.bench.items import format_answer

        out = []
        for r in requests:
            gold = " " + format_answer(self._item(r.context).answer)
            out.append([0.0 if c == gold else -1.0 for c in r.continuations])
        return out

    def info(self):
        from mmedkit.models.base import ModelInfo

        return ModelInfo(backend="scripted", model="scripted")


def test_study_protocol_run_reports_strict_lenient_and_loglikelihood(tmp_path) -> None:
    import json

    from mmedkit.bench.engine import RunConfig, run_benchmark
    from mmedkit.bench.loader import load_benchmark

    model = Scripted(load_benchmark("demo"))
    cfg = RunConfig(model="scripted", mode="generate", protocol="study", langs="fr,es", chunk_size=100)
    assert cfg.max_new_tokens == 1000
    results = run_benchmark(cfg, tmp_path, model=model, show_progress=False)  # type: ignore[arg-type]
    assert all(r.max_new_tokens == 1000 and r.stop == () and r.temperature == 0.0 for r in model.requests)
    assert all(r.prompt.endswith(" \n\n### Response:") for r in model.requests)
    saved = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert saved["protocol"]["name"] == "study" and saved["protocol"]["headline"] == "study_strict"
    n = saved["metrics"]["overall"]["n"]
    strict, lenient = saved["metrics"]["overall"], saved["metrics_lenient"]["overall"]
    assert n == 20 and saved["metrics_loglikelihood"]["overall"]["micro_accuracy"] == 100.0
    assert strict["micro_accuracy"] == pytest.approx(100 * 7 / 20)  # items 0, 3, ... of the one chunk
    assert lenient["micro_accuracy"] == pytest.approx(100 * 14 / 20)
    assert strict["invalid_rate"] == pytest.approx(100 * 13 / 20) and lenient["invalid_rate"] == pytest.approx(30)
    assert results["metrics"] == saved["metrics"]
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "protocol `study`" in summary and "## Scorings of the same run" in summary
    assert "strict (study)" in summary and "lenient (mmedkit cascade)" in summary
    assert "74.27" in summary and "75.31" in summary


def test_study_protocol_refuses_other_settings() -> None:
    from mmedkit.bench.engine import RunConfig

    for kwargs in ({"mode": "loglikelihood"}, {"mode": "generate", "format": "chat"},
                   {"mode": "generate", "fewshot": 2}):
        with pytest.raises(ValueError, match="--protocol study"):
            RunConfig(model="m", protocol="study", **kwargs)
    assert RunConfig(model="m").fingerprint() == RunConfig(model="m", protocol="mmedkit").fingerprint()
    assert RunConfig(model="m", mode="generate", max_new_tokens=1000).fingerprint() != RunConfig(
        model="m", mode="generate", protocol="study").fingerprint()
