"""`--protocol study --study-token-cap N`: a capped study run records the deviation, and each sample says
whether its strict outcome is the one the full 1,000-token generation would get."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmedkit.bench.engine import RunConfig
from mmedkit.bench.extract import study_strict, study_strict_decided

OPTS = {"A": "Le foie", "B": "Le pancréas", "C": "La rate", "D": "Le rein"}
GOLD = frozenset({"B"})


@pytest.mark.parametrize(("text", "decided"), [
    ("", True),  # EOS first: the generation ended
    ("\n### Question: Quel organe sécrète l'insuline ?", True),
    ("blah ### Response:", True),
    ("B", False),
    ("###Answer: OPTION B IS CORRECT.", False),  # ",C" could still follow
    ("###Answer: OPTION B IS CORRECT.</s", False),  # a marker being completed at the cut
    ("A,B,C,D,A,B,C,D,A,B,C,D,A,B,C,D,A,B,C", False),
    ("A,B,C,D,A,B,C,D,A,B,C,D,A,B,C,D,A,B,C,x", False),  # the bad character is within reach of a marker
    ("x,B,C,D,A,B,C,D,A,B,C,D,A,B,C,D,A,B,C", True),
])
def test_decided_examples(text: str, decided: bool) -> None:
    assert study_strict_decided(text, OPTS) is decided


PIECES = ["B", ",", "C", " ", "\n", "x", "###Answer: OPTION ", "IS CORRECT.", "### Response:", "</s>", "<|im_end|>",
          "###Ans", "IS COR", "RECT."]


def test_a_decided_outcome_never_changes_with_more_text() -> None:
    """Exhaustive over short texts built from answers, markers and their halves: cut anywhere, continue any way."""
    texts = ["".join(p) for n in range(1, 4) for p in itertools.product(PIECES, repeat=n)]
    texts += [t + "x" * 20 for t in texts[:300]] + ["y" * 25 + t for t in texts[:300]]
    checked = 0
    for full in texts:
        for cut in range(len(full) + 1):
            prefix = full[:cut]
            if prefix and study_strict_decided(prefix, OPTS):
                checked += 1
                assert study_strict(prefix, OPTS, GOLD) == study_strict(full, OPTS, GOLD), (prefix, full)
    assert checked > 10_000


def test_token_cap_settings() -> None:
    cfg = RunConfig(model="m", mode="generate", protocol="study", token_cap=64)
    assert cfg.max_new_tokens == 64
    assert cfg.fingerprint() != RunConfig(model="m", mode="generate", protocol="study").fingerprint()
    for bad in (0, 1000):
        with pytest.raises(ValueError, match="between 1 and 999"):
            RunConfig(model="m", mode="generate", protocol="study", token_cap=bad)
    with pytest.raises(ValueError, match="use it with --protocol study"):
        RunConfig(model="m", mode="generate", token_cap=64)


def test_capped_study_run_records_the_deviation(tiny_model_dir: Path, tmp_path: Path) -> None:
    from mmedkit.bench.cli import app

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--model", str(tiny_model_dir), "--protocol", "study", "--langs",
                                      "en,fr", "--limit", "2", "--study-token-cap", "6", "--device", "cpu",
                                      "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "results.json").read_text(encoding="utf-8"))
    deviation = saved["protocol"]["deviation"]
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    assert deviation["token_cap"] == 6 and deviation["n"] == len(samples) == 4
    assert deviation["strict_undecided"] == sum(not s["strict_decided"] for s in samples)
    assert saved["config"]["max_new_tokens"] == 6
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "DEVIATION: generation capped at 6 new tokens" in summary
