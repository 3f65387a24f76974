"""IgakuQA importer: the Japanese national medical licensing exams 2018-2022 (Kasai et al. 2023).

Input: IgakuQA's ``data/`` folder (``<year>/<exam>-<block>.jsonl`` questions next to
``<exam>-<block>_metadata.jsonl``; the ``_translate.jsonl`` English versions are ignored), a year
folder, or one exam file. Every item is ``test``; :func:`split_igakuqa` makes a seeded train/test split.
"""

from __future__ import annotations

import dataclasses
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmedkit.bench.items import Item
from mmedkit.bench.sources.base import LETTERS, SourceResult, iter_jsonl, register, require
from mmedkit.errors import DataError

_EXAM_FILE = re.compile(r"^(\d{3})-([A-Z])\.jsonl$")
_PROBLEM_ID = re.compile(r"^(\d+)([A-Z])(\d+)$")
_ALTERNATIVES = re.compile(r"^[a-z](\s*or\s*[a-z])+$")
_CHOOSE_SEVERAL = "つ選べ"  # "...つ選べ" = "choose N": the exam asks for several answers
EXAM_YEAR_OFFSET = 1906
"""The n-th exam was held in year n + 1906 (112th: 2018, 116th: 2022)."""

NEEDS_IMAGE = "needs an image"
NUMERIC = "numeric-entry question (no choices)"
NO_ANSWER = "no answer given"
ALTERNATIVES = "several alternative answers accepted (e.g. 'a or d')"
NOT_A_LETTER = "answer is not an option letter"
BLANK_OPTION = "blank option text"
UNSCORED = "excluded from scoring by the exam board (points 0)"


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().lower()


def exam_files(path: Path) -> list[Path]:
    """The question files (``112-A.jsonl`` ...) under ``path``, or ``path`` itself when it is one."""
    if path.is_file():
        if not _EXAM_FILE.match(path.name):
            raise DataError(f"not an IgakuQA exam file (expected a name like 112-A.jsonl): {path}")
        return [path]
    files = sorted((p for p in path.rglob("*.jsonl") if _EXAM_FILE.match(p.name)), key=lambda p: p.name)
    if not files:
        raise DataError(f"no IgakuQA exam files (<year>/112-A.jsonl ...) under {path}")
    return files


def _read_metadata(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        raise DataError(f"metadata file not found: {path} (IgakuQA ships one next to each exam file)")
    out: dict[str, dict[str, Any]] = {}
    for line, rec in iter_jsonl(path):
        out[str(require(rec, "problem_id", str, path=path, line=line))] = rec
    return out


def _letters(values: Any) -> list[str]:
    """Contraindicated choices (``kinki``: ``["cde"]``, ``["ｂ"]``, ``[" e"]``) as uppercase letters."""
    if not isinstance(values, list):
        return []
    return sorted({c.upper() for v in values for c in _norm(str(v)) if "a" <= c <= "z"})


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _drop_reason(choices: list[Any], answer: list[Any], points: Any, text_only: bool, *, keep_images: bool,
                 keep_unscored: bool) -> str | None:
    if not choices:
        return NUMERIC
    normed = [_norm(str(a)) for a in answer if _norm(str(a))]
    if not normed:
        return NO_ANSWER
    if any(_ALTERNATIVES.match(a) for a in normed):
        return ALTERNATIVES
    if any(len(a) != 1 or not "a" <= a <= "z" for a in normed):
        return NOT_A_LETTER
    if any(not isinstance(c, str) or not c.strip() for c in choices):
        return BLANK_OPTION
    if not keep_unscored and str(points).strip() == "0":
        return UNSCORED
    if not keep_images and not text_only:
        return NEEDS_IMAGE
    return None


@register("igakuqa", language="ja", title="IgakuQA (Japanese medical licensing exams 2018-2022)",
          license="none stated (research use)",
          expects="IgakuQA data/ folder (<year>/112-A.jsonl with 112-A_metadata.jsonl), a year folder or one exam file",
          homepage="https://github.com/jungokasai/IgakuQA")
def read_igakuqa(path: Path, *, keep_images: bool = False, keep_unscored: bool = False) -> SourceResult:
    """Read IgakuQA questions as multiple-choice items (split ``test``).

    Dropped, with the reason counted: numeric-entry questions (no choices), answers that are empty,
    not letters or accept alternatives (``"a or d"``), blank option texts, questions the exam board
    excluded from scoring (``points`` 0) unless ``keep_unscored``, and questions that need an image
    (``text_only`` false) unless ``keep_images``. ``multi_answer`` is set for "Nつ選べ" questions.
    """
    result = SourceResult(items=[])
    per_year: Counter[int] = Counter()
    total = text_only_total = 0
    for file in exam_files(Path(path)):
        exam = _EXAM_FILE.match(file.name)
        assert exam is not None
        year = int(exam.group(1)) + EXAM_YEAR_OFFSET
        meta = _read_metadata(file.with_name(f"{file.stem}_metadata.jsonl"))
        for line, rec in iter_jsonl(file):
            where = {"path": file, "line": line}
            pid = require(rec, "problem_id", str, **where).strip()
            text = require(rec, "problem_text", str, **where)
            choices = require(rec, "choices", list, **where)
            answer = require(rec, "answer", list, **where)
            text_only = require(rec, "text_only", bool, **where)
            total += 1
            text_only_total += text_only
            reason = _drop_reason(choices, answer, rec.get("points"), text_only, keep_images=keep_images,
                                  keep_unscored=keep_unscored)
            if reason:
                result.drop(reason)
                continue
            if len(choices) > len(LETTERS):
                raise DataError(f"{len(choices)} choices, at most {len(LETTERS)} supported", path=str(file),
                                line=line, field="choices")
            options = {LETTERS[i]: str(c).strip() for i, c in enumerate(choices)}
            letters = frozenset(_norm(str(a)).upper() for a in answer if _norm(str(a)))
            unknown = sorted(letters - set(options))
            if unknown:
                raise DataError(f"answer {','.join(unknown)} is not among the options {','.join(options)}",
                                path=str(file), line=line, field="answer")
            if pid not in meta:
                raise DataError(f"problem {pid} has no row in {file.stem}_metadata.jsonl", path=str(file),
                                line=line, field="problem_id")
            info = meta[pid]
            category = str(info.get("category") or "").strip() or None
            result.items.append(Item(
                id=f"igakuqa-{pid}", language="ja", question=text.strip(), options=options, answer=letters,
                subject=category, split="test",
                multi_answer=len(letters) > 1 or _CHOOSE_SEVERAL in unicodedata.normalize("NFKC", text),
                meta={"exam": file.stem, "year": year, "points": int(_float(rec.get("points")) or 0),
                      "text_only": text_only, "human_accuracy": _float(info.get("human_accuracy")),
                      "contraindicated": _letters(info.get("kinki")), "source_file": str(file),
                      "source_line": line}))
            per_year[year] += 1
    ids = Counter(it.id for it in result.items)
    dupes = sorted(i for i, n in ids.items() if n > 1)
    if dupes:
        raise DataError(f"duplicate problem ids: {', '.join(dupes[:5])}", path=str(path), field="problem_id")
    result.notes.append(f"{total} questions read, {text_only_total} text-only (text_only true), "
                        f"{len(result.items)} kept")
    result.notes.append("kept per year: " + ", ".join(f"{y} {n}" for y, n in sorted(per_year.items())))
    if result.dropped:
        result.notes.append("dropped: " + ", ".join(f"{n} {r}" for r, n in result.dropped.items()))
    return result


def _year(item: Item) -> int:
    year = item.meta.get("year")
    if isinstance(year, int):
        return year
    m = _PROBLEM_ID.match(item.id.removeprefix("igakuqa-"))
    if not m:
        raise DataError(f"cannot tell the exam year of item {item.id!r}")
    return int(m.group(1)) + EXAM_YEAR_OFFSET


def _order(item: Item) -> tuple[int, str, int, str]:
    m = _PROBLEM_ID.match(item.id.removeprefix("igakuqa-"))
    return (int(m.group(1)), m.group(2), int(m.group(3)), item.id) if m else (0, "", 0, item.id)


def split_igakuqa(items: Sequence[Item], n_test: int = 199, seed: int = 20240924) -> list[Item]:
    """A seeded train/test split of IgakuQA items, stratified by exam year.

    MMedBench's own rule is unpublished (it has 1,590 train / 199 test). The rule here: the
    ``n_test`` test places are shared among the exam years in proportion to their item counts
    (largest remainder; ties go to the earlier year); within each year, in year order, the items
    are sorted by problem id (exam, block, number), shuffled with one ``random.Random(seed)``, and
    the first ones become ``test``. Everything else is ``train``. The result keeps the input order
    and depends only on the items and the seed.
    """
    if not 0 <= n_test <= len(items):
        raise DataError(f"n_test must be between 0 and {len(items)} (the number of items), got {n_test}")
    by_year: dict[int, list[Item]] = {}
    for it in items:
        by_year.setdefault(_year(it), []).append(it)
    years = sorted(by_year)
    exact = {y: n_test * len(by_year[y]) / len(items) for y in years} if items else {}
    quota = {y: int(exact[y]) for y in years}
    spare = n_test - sum(quota.values())
    for y in sorted(years, key=lambda y: (-(exact[y] - quota[y]), y))[:spare]:
        quota[y] += 1
    rng = random.Random(seed)
    test_ids: set[str] = set()
    for y in years:
        group = sorted(by_year[y], key=_order)
        rng.shuffle(group)
        test_ids.update(it.id for it in group[:quota[y]])
    if len(test_ids) != n_test:
        raise DataError("item ids are not unique; cannot split")
    return [dataclasses.replace(it, split="test" if it.id in test_ids else "train", meta=dict(it.meta))
            for it in items]
