"""FrenchMedMCQA (Labrak et al., 2023): French pharmacy-exam questions with one or more correct answers.

Input: the repository's ``corpus/`` folder with ``train.json``, ``dev.json`` and ``test.json``, each a
JSON array of records::

    {"id": "5987…", "question": "…", "answers": {"a": "…", …, "e": "…"},
     "correct_answers": ["c"], "subject_name": "pharmacie", "type": "simple", "nbr_correct_answers": 1}

MMedBench's French splits are ``train.json`` (2,171) and ``test.json`` (622); ``dev.json`` (312) is not
part of them, so it is left out unless ``dev="train"`` or ``dev="test"`` asks for it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from mmedkit.bench.items import Item, parse_answer
from mmedkit.bench.sources.base import SourceResult, register, require, split_files
from mmedkit.errors import DataError
from mmedkit.records import read_json

FILES = {"train": "train.json", "dev": "dev.json", "test": "test.json"}


@register("frenchmedmcqa", language="fr", title="FrenchMedMCQA", license="Apache-2.0",
          expects="the FrenchMedMCQA corpus/ folder with train.json, dev.json and test.json",
          homepage="https://github.com/qanastek/FrenchMedMCQA")
def read_frenchmedmcqa(path: Path, *, dev: str = "skip") -> SourceResult:
    """Read ``corpus/``: train.json -> train, test.json -> test, dev.json -> ``dev`` (skip|train|test).

    Every item is multi-answer (the task lets a model pick any subset of A-E); the gold answer set is
    kept as published. ``nbr_correct_answers`` must equal the number of ``correct_answers``.
    """
    result = SourceResult(items=[])
    plan = split_files("frenchmedmcqa", Path(path), FILES, dev, result)
    seen: dict[str, int] = {}
    for file, part, split in plan:
        records = read_json(file)
        if not isinstance(records, list):
            raise DataError(f"expected a JSON array of records, got {type(records).__name__}", path=str(file))
        for index, rec in enumerate(records):
            item = _item(rec, file=file, index=index, split=split, part=part)
            n = seen.get(item.id, 0)
            seen[item.id] = n + 1
            if n:
                dup_id = f"{item.id}-dup{n}"
                result.notes.append(f"{file.name} record {index}: id {item.id} repeated; imported as {dup_id}")
                item = replace(item, id=dup_id, meta={**item.meta, "duplicate_of": item.id})
            result.items.append(item)
    return result


def _item(rec: Any, *, file: Path, index: int, split: str, part: str) -> Item:
    where = f"record {index}"
    if not isinstance(rec, dict):
        raise DataError(f"expected a JSON object, got {type(rec).__name__}", path=str(file), line=where)
    rid = require(rec, "id", str, path=file, line=where)
    question = require(rec, "question", str, path=file, line=where)
    answers = require(rec, "answers", dict, path=file, line=where)
    correct = require(rec, "correct_answers", list, path=file, line=where)
    declared = require(rec, "nbr_correct_answers", int, path=file, line=where)
    options = {str(k).strip().upper(): str(v) for k, v in sorted(answers.items(), key=lambda kv: str(kv[0]).lower())}
    if not options or any(len(k) != 1 or not k.isalpha() for k in options):
        raise DataError(f"expected option letters a-e, got {', '.join(map(str, answers)) or 'none'}",
                        path=str(file), line=where, field="answers")
    answer = parse_answer(correct, options, path=str(file), line=where, field="correct_answers")
    if len(correct) != len(answer):
        raise DataError(f"repeated letters in {correct!r}", path=str(file), line=where, field="correct_answers")
    if declared != len(answer):
        raise DataError(f"nbr_correct_answers is {declared} but correct_answers lists {len(answer)}",
                        path=str(file), line=where, field="nbr_correct_answers")
    meta: dict[str, Any] = {"source_id": rid, "source_split": part, "source_file": str(file), "source_line": where}
    if isinstance(rec.get("type"), str):
        meta["type"] = rec["type"]
    subject = rec.get("subject_name")
    return Item(id=f"frenchmedmcqa-{rid}", language="fr", question=question, options=options, answer=answer,
                subject=subject if isinstance(subject, str) and subject.strip() else None, split=split,
                multi_answer=True, meta=meta)
