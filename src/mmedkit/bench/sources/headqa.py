"""HEAD-QA v1.0, Spanish (Vilares & Gómez-Rodríguez, 2019): Spanish healthcare specialisation exams.

Input: the ``data/HEAD/`` folder of the official ``HEAD.zip`` with ``train_HEAD.json`` (2013-2014 exams),
``dev_HEAD.json`` (2015) and ``test_HEAD.json`` (2016-2017). Each file is::

    {"version": "1.0", "language": "es", "exams": {"Cuaderno_2016_1_B": {"name": …, "category": "biology",
     "year": "2016", "data": [{"qid": "1", "qtext": "…", "ra": "2", "image": "",
                               "answers": [{"aid": 1, "atext": "…"}, …]}, …]}, …}}

Answers are lettered A, B, … in ``aid`` order (``meta["aid_to_letter"]`` records the mapping) and the gold
letter is the one of ``ra``. MMedBench's Spanish splits are *every* question of ``train_HEAD.json`` (2,657)
and ``test_HEAD.json`` (2,742), the 68 + 67 questions about an image included; this importer drops those by
default (reason ``"needs an image"``) and ``keep_images=True`` reproduces MMedBench's counts. ``HEAD.json``
(all exams) and the per-exam ``.gold`` files repeat the same data and are not read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmedkit.bench.items import Item
from mmedkit.bench.sources.base import LETTERS, SourceResult, register, require, split_files
from mmedkit.errors import DataError
from mmedkit.records import read_json

FILES = {"train": "train_HEAD.json", "dev": "dev_HEAD.json", "test": "test_HEAD.json"}
NEEDS_IMAGE = "needs an image"


@register("headqa", language="es", title="HEAD-QA v1.0 (Spanish)",
          license="MIT + reuse conditions of the Spanish Ministry of Health (see data/HEAD/README.txt)",
          expects="the HEAD-QA data/HEAD/ folder with train_HEAD.json, dev_HEAD.json and test_HEAD.json",
          homepage="https://aghie.github.io/head-qa/")
def read_headqa(path: Path, *, dev: str = "skip", keep_images: bool = False) -> SourceResult:
    """Read ``data/HEAD/``: train_HEAD -> train, test_HEAD -> test, dev_HEAD -> ``dev`` (skip|train|test).

    Questions with an ``image`` are dropped unless ``keep_images`` (then the image path is kept in
    ``meta["image"]``; the picture itself is not part of the item).
    """
    result = SourceResult(items=[])
    plan = split_files("headqa", Path(path), FILES, dev, result)
    if not keep_images:
        result.notes.append("questions about an image dropped; keep_images=True keeps them (as MMedBench does)")
    seen: set[str] = set()
    for file, part, split in plan:
        for item in _read_file(file, split=split, part=part):
            if item.meta.get("image") and not keep_images:
                result.drop(NEEDS_IMAGE)
                continue
            if item.id in seen:
                raise DataError(f"duplicate question {item.id!r}", path=str(file), line=item.meta["source_line"],
                                field="qid")
            seen.add(item.id)
            result.items.append(item)
    return result


def _read_file(file: Path, *, split: str, part: str) -> list[Item]:
    doc = read_json(file)
    if not isinstance(doc, dict):
        raise DataError(f"expected a JSON object with 'exams', got {type(doc).__name__}", path=str(file))
    lang = doc.get("language")
    if lang is not None and lang != "es":
        raise DataError(f"expected the Spanish HEAD-QA files (language 'es'), got {lang!r}", path=str(file),
                        field="language")
    exams = require(doc, "exams", dict, path=file, line="top level")
    items: list[Item] = []
    for name, exam in exams.items():
        where = f"exam {name}"
        if not isinstance(exam, dict):
            raise DataError(f"expected an object, got {type(exam).__name__}", path=str(file), line=where)
        questions = require(exam, "data", list, path=file, line=where)
        category = exam.get("category")
        for index, rec in enumerate(questions):
            items.append(_item(rec, file=file, where=f"{where} record {index}", exam=str(name), split=split,
                               part=part, category=category if isinstance(category, str) else None,
                               year=exam.get("year")))
    return items


def _item(rec: Any, *, file: Path, where: str, exam: str, split: str, part: str, category: str | None,
          year: Any) -> Item:
    if not isinstance(rec, dict):
        raise DataError(f"expected a JSON object, got {type(rec).__name__}", path=str(file), line=where)
    qid = str(require(rec, "qid", (str, int), path=file, line=where)).strip()
    qtext = require(rec, "qtext", str, path=file, line=where)
    ra = _number(require(rec, "ra", (str, int), path=file, line=where), file=file, where=where, field="ra")
    answers = require(rec, "answers", list, path=file, line=where)
    image = rec.get("image") or ""
    if not isinstance(image, str):
        raise DataError(f"expected an image path or '', got {image!r:.60}", path=str(file), line=where, field="image")
    texts: dict[int, str] = {}
    for a in answers:
        if not isinstance(a, dict):
            raise DataError(f"expected {{aid, atext}} objects, got {a!r:.60}", path=str(file), line=where,
                            field="answers")
        aid = _number(require(a, "aid", (int, str), path=file, line=where), file=file, where=where, field="aid")
        if aid in texts:
            raise DataError(f"answer id {aid} repeated", path=str(file), line=where, field="aid")
        texts[aid] = require(a, "atext", str, path=file, line=where)
    if not 2 <= len(texts) <= len(LETTERS):
        raise DataError(f"expected 2 to {len(LETTERS)} answers, got {len(texts)}", path=str(file), line=where,
                        field="answers")
    aid_to_letter = {aid: LETTERS[i] for i, aid in enumerate(sorted(texts))}
    if ra not in aid_to_letter:
        raise DataError(f"right answer {ra} is not among the answer ids {', '.join(map(str, sorted(texts)))}",
                        path=str(file), line=where, field="ra")
    meta: dict[str, Any] = {"exam": exam, "year": year, "qid": qid, "ra": ra,
                            "aid_to_letter": {str(k): v for k, v in aid_to_letter.items()},
                            "source_split": part, "source_file": str(file), "source_line": where}
    if image.strip():
        meta["image"] = image.strip()
    return Item(id=f"headqa-{exam}-{qid}", language="es", question=qtext,
                options={aid_to_letter[aid]: texts[aid] for aid in sorted(texts)},
                answer=frozenset({aid_to_letter[ra]}), subject=category, split=split, multi_answer=False, meta=meta)


def _number(value: str | int, *, file: Path, where: str, field: str) -> int:
    if isinstance(value, bool):
        raise DataError(f"expected an answer number, got {value!r}", path=str(file), line=where, field=field)
    try:
        return int(str(value).strip())
    except ValueError:
        raise DataError(f"expected an answer number, got {value!r:.40}", path=str(file), line=where,
                        field=field) from None
