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
