"""The benchmark item model and the parsing of answers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mmedkit.errors import DataError

__all__ = ["DataError", "Item", "format_answer", "parse_answer"]  # DataError re-exported from mmedkit.errors


@dataclass(frozen=True)
class Item:
    """One multiple-choice question.

    ``answer`` is a set of option letters; single-answer questions have one letter.
    ``multi_answer`` says whether the *task* allows several answers (the candidates a model
    may choose from), which is a property of the dataset, never derived from the gold answer.
    """

    id: str
    language: str
    question: str
    options: dict[str, str]
    answer: frozenset[str]
    rationale: str | None = None
    human_checked: bool | None = None
    subject: str | None = None
    split: str = "test"
    multi_answer: bool = False
    n_answers: int | None = None
    """How many letters the question asks for, when known ("2つ選べ"); narrows the candidates."""
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def letters(self) -> list[str]:
        """Option letters in presentation order."""
        return list(self.options)

    def to_record(self) -> dict[str, Any]:
        """The item as an MMedBench JSONL record."""
        answer = sorted(self.answer)
        rec: dict[str, Any] = {
            "id": self.id,
            "question": self.question,
            "options": dict(self.options),
            "answer_idx": answer if self.multi_answer or len(answer) > 1 else answer[0],
            "answer": format_answer(self.answer),
            "rationale": self.rationale or "",
            "human_checked": int(bool(self.human_checked)) if self.human_checked is not None else 0,
            "multi_answer": self.multi_answer,
        }
        if self.n_answers:
            rec["n_answers"] = self.n_answers
        meta = dict(self.meta)
        if self.subject:
            meta.setdefault("subject", self.subject)
        if meta:
            rec["meta_info"] = meta
        return rec


_SPLIT_RE = re.compile(r"[,;/\s]+")


def format_answer(letters: frozenset[str] | set[str] | list[str]) -> str:
    """Write an answer set as the study writes it: sorted letters joined by commas (``A,C,E``)."""
    return ",".join(sorted(letters))


def parse_answer(value: Any, options: dict[str, str], *, path: str | None = None,
                 line: int | None = None, field: str = "answer_idx") -> frozenset[str]:
    """Parse an ``answer_idx`` value: ``"B"``, ``["A", "C"]``, ``"A,C"`` or ``"a, c"``.

    Raises :class:`DataError` when the value is empty or names a letter not among the options.
    """
    if isinstance(value, str):
        parts = [p for p in _SPLIT_RE.split(value.strip()) if p]
    elif isinstance(value, (list, tuple)):
        parts = [str(p).strip() for p in value if str(p).strip()]
    else:
        raise DataError(f"expected a letter, a list of letters or 'A,C', got {value!r}",
                        path=path, line=line, field=field)
    if not parts:
        raise DataError("empty answer", path=path, line=line, field=field)
    letters = {p.upper() for p in parts}
    unknown = sorted(letters - set(options))
    if unknown:
        raise DataError(f"answer {','.join(unknown)} is not among the options {','.join(options)}",
                        path=path, line=line, field=field)
    return frozenset(letters)
