"""RuMedDaNet (RuMedBench, Blinov et al., 2022): Russian medical yes/no questions about a context passage.

Input: the ``data/RuMedDaNet/`` folder of RuMedBench with ``train_v1.jsonl``, ``dev_v1.jsonl``,
``test_v1.jsonl`` and ``private_test_v1.jsonl``; one record a line::

    {"context": "…", "question": "…?", "answer": "да", "pairID": "53f9…"}

MMedBench's Russian splits are ``train_v1.jsonl`` (1,052) and ``test_v1.jsonl`` (256). ``dev_v1.jsonl``
(256, labelled) is left out unless ``dev="train"`` or ``dev="test"``; ``private_test_v1.jsonl`` has no
answers and is only counted. Each item has the options ``{"A": "да", "B": "нет"}``; the question text is
``"Контекст: <context>\\nВопрос: <question>"`` (``context=False`` keeps the bare question and moves the
passage to ``meta["context"]``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmedkit.bench.items import Item
from mmedkit.bench.sources.base import SourceResult, iter_jsonl, register, require, split_files
from mmedkit.errors import DataError

FILES = {"train": "train_v1.jsonl", "dev": "dev_v1.jsonl", "test": "test_v1.jsonl"}
PRIVATE = "private_test_v1.jsonl"
OPTIONS = {"A": "да", "B": "нет"}
_LETTER = {text: letter for letter, text in OPTIONS.items()}
NO_ANSWER = "no gold answer"


@register("rumeddanet", language="ru", title="RuMedDaNet (RuMedBench)", license="Apache-2.0",
          expects="the RuMedBench data/RuMedDaNet/ folder with train_v1.jsonl and test_v1.jsonl",
          homepage="https://github.com/sb-ai-lab/MedBench")
def read_rumeddanet(path: Path, *, dev: str = "skip", context: bool = True) -> SourceResult:
    """Read ``data/RuMedDaNet/``: train_v1 -> train, test_v1 -> test, dev_v1 -> ``dev`` (skip|train|test).

    Records without an answer cannot be scored and are dropped (reason ``"no gold answer"``); the
    unlabelled ``private_test_v1.jsonl`` is counted under that reason when present.
    """
    result = SourceResult(items=[])
    plan = split_files("rumeddanet", Path(path), FILES, dev, result)
    seen: dict[str, str] = {}
    for file, part, split in plan:
        before = len(result.items)
        for lineno, rec in iter_jsonl(file):
            item = _item(rec, file=file, line=lineno, split=split, part=part, context=context)
            if item is None:
                result.drop(NO_ANSWER)
                continue
            if item.id in seen:
                raise DataError(f"duplicate pairID (also in {seen[item.id]})", path=str(file), line=lineno,
                                field="pairID")
            seen[item.id] = f"{file.name}:{lineno}"
            result.items.append(item)
        if len(result.items) == before:
            result.notes.append(f"{file.name}: no labelled records")
    private = path / PRIVATE
    if private.is_file():
        n = sum(1 for _ in iter_jsonl(private))
        result.drop(NO_ANSWER, n)
        result.notes.append(f"{PRIVATE}: {n} unlabelled records (hidden-answer test) not imported")
    return result


def _item(rec: dict[str, Any], *, file: Path, line: int, split: str, part: str, context: bool) -> Item | None:
    pair_id = require(rec, "pairID", str, path=file, line=line)
    passage = require(rec, "context", str, path=file, line=line).strip()
    question = require(rec, "question", str, path=file, line=line).strip()
    raw = rec.get("answer")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if not isinstance(raw, str) or raw.strip().lower() not in _LETTER:
        raise DataError(f"expected 'да' or 'нет', got {raw!r:.40}", path=str(file), line=line, field="answer")
    meta: dict[str, Any] = {"pairID": pair_id, "source_split": part, "source_file": str(file), "source_line": line}
    if context:
        text = f"Контекст: {passage}\nВопрос: {question}"
    else:
        text = question
        meta["context"] = passage
    return Item(id=f"rumeddanet-{pair_id}", language="ru", question=text, options=dict(OPTIONS),
                answer=frozenset({_LETTER[raw.strip().lower()]}), split=split, multi_answer=False, meta=meta)
