"""Integrity of the emergency-screen evaluation set (tests/serve/data/safety_eval): schema, size, coverage, labels."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from mmedkit.languages import CODES
from mmedkit.serve.safety import SafetyPolicy
from mmedkit.text import CYRILLIC, HAN, KANA, script_re

DATA = Path(__file__).parent / "data" / "safety_eval"
FIELDS = {"id", "language", "kind", "category", "emergency", "messages", "note"}
MAY_BE_EMERGENCY = {"direct", "lay", "misspelled", "third_person", "multi_turn", "mixed"}
NEVER_EMERGENCY = {"negated", "historical", "hypothetical", "educational", "mild"}
ALWAYS_EMERGENCY = {"direct", "lay", "misspelled"}
BOTH_LABELS = {"third_person", "multi_turn", "mixed"}
SCRIPT = {"zh": script_re(HAN), "ja": script_re(KANA), "ru": script_re(CYRILLIC)}
"""A script every (not mixed) user turn of these languages' cases must contain."""


def _load(code: str) -> list[dict]:
    path = DATA / f"{code}.jsonl"
    assert path.is_file(), f"{path}: missing: every language has its evaluation set"
    cases = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            cases.append(json.loads(line))
        except json.JSONDecodeError as exc:
            pytest.fail(f"{path}:{n}: not JSON: {exc}")
    return cases


def _user_turns(case: dict) -> list[str]:
    return [m["content"] for m in case["messages"] if m["role"] == "user"]


@pytest.fixture(scope="module")
def categories() -> set[str]:
    return set(SafetyPolicy.load().rules)


@pytest.mark.parametrize("code", CODES)
def test_schema_and_ids(code: str, categories: set[str]) -> None:
    for n, case in enumerate(_load(code), 1):
        where = f"{code}.jsonl:{n}"
        assert set(case) == FIELDS, f"{where}: fields {sorted(case)}"
        assert case["id"] == f"{code}-{n:03d}", f"{where}: id {case['id']!r}"
        assert case["language"] == code, where
        assert case["kind"] in MAY_BE_EMERGENCY | NEVER_EMERGENCY, f"{where}: kind {case['kind']!r}"
        assert case["category"] is None or case["category"] in categories, f"{where}: category {case['category']!r}"
        assert isinstance(case["emergency"], bool), where
        assert isinstance(case["note"], str) and case["note"].strip(), f"{where}: note"
        roles = [m["role"] for m in case["messages"]]
        assert roles and roles[0] == roles[-1] == "user", f"{where}: roles {roles}"
        assert all(a != b for a, b in zip(roles, roles[1:], strict=False)), f"{where}: roles alternate"
        assert set(roles) <= {"user", "assistant"}, f"{where}: roles {roles}"
        assert all(set(m) == {"role", "content"} and m["content"].strip() for m in case["messages"]), where


@pytest.mark.parametrize("code", CODES)
def test_labels_consistent(code: str) -> None:
    for case in _load(code):
        where, kind, turns = case["id"], case["kind"], _user_turns(case)
        if case["emergency"]:
            assert case["category"] is not None, f"{where}: an emergency names its category"
        assert not (kind in NEVER_EMERGENCY and case["emergency"]), f"{where}: a {kind} case is never an emergency"
        assert not (kind in ALWAYS_EMERGENCY and not case["emergency"]), f"{where}: a {kind} case is an emergency"
        if kind == "multi_turn":
            assert 2 <= len(turns) <= 3, f"{where}: multi-turn cases have 2-3 user turns"
        else:
            assert len(turns) == 1, f"{where}: one user turn"
        if code in SCRIPT and kind != "mixed":
            assert all(SCRIPT[code].search(t) for t in turns), f"{where}: a user turn not in {code}"


@pytest.mark.parametrize("code", CODES)
def test_size_balance_and_coverage(code: str, categories: set[str]) -> None:
    cases = _load(code)
    assert len(cases) >= 100
    share = sum(c["emergency"] for c in cases) / len(cases)
    assert 0.5 <= share <= 0.65, f"{code}: {share:.0%} emergencies (about 55-60% wanted)"
    # The set was written for the first ten categories; those added since are tested in test_serve_safety_classes.py.
    covered = {c["category"] for c in cases if c["emergency"]}
    assert covered <= categories and len(covered) >= 10, f"{code}: a category has no emergency"
    kinds = Counter(c["kind"] for c in cases)
    assert set(kinds) == MAY_BE_EMERGENCY | NEVER_EMERGENCY, f"{code}: kinds {dict(kinds)}"
    for kind in BOTH_LABELS:
        labels = {c["emergency"] for c in cases if c["kind"] == kind}
        assert labels == {True, False}, f"{code}: {kind} cases need emergencies and non-emergencies"


def test_no_duplicate_cases() -> None:
    seen: dict[str, str] = {}
    for code in CODES:
        for case in _load(code):
            key = " | ".join(re.sub(r"\W+", " ", t.casefold()).strip() for t in _user_turns(case))
            assert key not in seen, f"{case['id']} repeats {seen.get(key)}"
            seen[key] = case["id"]


def test_bench_safety_runs_on_the_set(tmp_path: Path) -> None:
    """benchmarks/bench_safety.py screens every case and its counts add up to the set's labels."""
    out = tmp_path / "bench.json"
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_safety.py"
    run = subprocess.run([sys.executable, str(script), "--lang", "en", "--repeats", "2", "--json", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text(encoding="utf-8"))
    cases = _load("en")
    overall = result["summary"]["overall"]
    assert overall["emergencies"] == sum(c["emergency"] for c in cases)
    assert overall["ordinary"] == len(cases) - overall["emergencies"]
    assert overall["caught"] == sum(r["emergency"] and r["verdict"] is not None for r in result["cases"])
    assert "| en |" in run.stdout and "overall recall" in run.stdout
    assert result["latency"]["message_8000_chars"]["repeats"] == 2
