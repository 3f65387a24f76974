"""MedQA importers: ``medqa-usmle`` (English, USMLE) and ``medqa-mcmle`` (Chinese, Mainland MCMLE).

Two record forms are accepted, detected per record:

* the original MedQA form (jind11/MedQA, ``data_clean/questions``): ``question``, ``options``
  ``{"A": text}``, ``answer_idx``, ``answer`` (the answer text), ``meta_info`` and, in some mirrors,
  ``realidx``;
* the re-packed form of FreedomIntelligence/Apollo: ``question``, ``option`` (``"(A) text.\\n(B) text."``),
  ``anwer`` (sic, ``"(D)"``) and ``source``. The re-packing appends a ``"."`` to every option
  (compare Apollo's English file with MedQA's original records); ``strip_period=True`` (default)
  removes that one added character, so both forms give the same option text.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from mmedkit.bench.items import Item, parse_answer
from mmedkit.bench.sources.base import LETTERS, SourceResult, iter_jsonl, register, require
from mmedkit.bench.sources.packed import parse_packed_answer, parse_packed_options
from mmedkit.errors import DataError

MEDQA_HOME = "https://github.com/jind11/MedQA"

_SPLIT_WORDS = {"train": "train", "dev": "dev", "val": "dev", "valid": "dev", "validation": "dev", "test": "test"}
_OPTION_LINE = re.compile(r"^\s*\(([A-Z])\)[ \t]?(.*)$")
_LETTER_ANSWER = re.compile(r"^\(?\s*([A-Za-z])\s*\)?\.?$")


def split_of(path: Path) -> str | None:
    """``train``, ``dev`` or ``test`` as named by the file (``phrases_no_exclude_test.jsonl`` -> test), else None."""
    found = {_SPLIT_WORDS[t] for t in re.split(r"[^a-z]+", path.stem.lower()) if t in _SPLIT_WORDS}
    return found.pop() if len(found) == 1 else None


def _original_options(rec: dict[str, Any], *, path: str, line: int) -> dict[str, str]:
    raw = require(rec, "options", dict, path=Path(path), line=line)
    options: dict[str, str] = {}
    for key, value in raw.items():
        letter = str(key).strip().upper()
        if len(letter) != 1 or letter not in LETTERS:
            raise DataError(f"option key {key!r} is not a letter A-{LETTERS[-1]}", path=path, line=line,
                            field="options")
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"option {letter} is empty or not a string", path=path, line=line, field="options")
        options[letter] = value.strip()
    if len(options) < 2:
        raise DataError("expected at least two options", path=path, line=line, field="options")
    return options


def parse_medqa_record(rec: dict[str, Any], *, name: str, language: str, split: str, path: Path, line: int,
                       strip_period: bool = True, stats: Counter[str] | None = None) -> Item:
    """One MedQA record, in either form, as an :class:`Item`; bad records raise :class:`DataError`."""
    where = str(path)
    question = require(rec, "question", str, path=path, line=line).strip()
    stats = stats if stats is not None else Counter()
    subject = None
    if "options" in rec:
        stats["original form"] += 1
        options = _original_options(rec, path=where, line=line)
        if "answer_idx" not in rec:
            raise DataError("missing field (expected a letter)", path=where, line=line, field="answer_idx")
        answer = parse_answer(rec["answer_idx"], options, path=where, line=line, field="answer_idx")
        if len(answer) != 1:
            raise DataError(f"MedQA questions have one answer, got {sorted(answer)}", path=where, line=line,
                            field="answer_idx")
        text = rec.get("answer")
        if isinstance(text, str) and text.strip() != options[next(iter(answer))]:
            stats["answer text differs from options[answer_idx]"] += 1
        meta_info = rec.get("meta_info")
        subject = (meta_info.strip() or None) if isinstance(meta_info, str) else None
    elif "option" in rec:
        stats["re-packed form"] += 1
        block = require(rec, "option", str, path=path, line=line)
        options = parse_packed_options(block, path=where, line=line, strip_period=strip_period)
        key = "anwer" if "anwer" in rec else "answer"
        raw = require(rec, key, str, path=path, line=line)
        answer = frozenset({parse_packed_answer(raw, options, path=where, line=line, field=key)})
    else:
        raise DataError("missing field (expected an object 'options' or a string 'option')", path=where,
                        line=line, field="options")
    realidx = rec.get("realidx")
    if realidx is not None and str(realidx).strip():
        item_id = f"{name}-{str(realidx).strip()}"
    else:
        item_id = f"{name}-{line}" if path.stem == name else f"{name}-{path.stem}-{line}"
    return Item(id=item_id, language=language, question=question, options=options, answer=answer,
                subject=subject, split=split, meta={"source_file": where, "source_line": line})


def _count_records(path: Path) -> int:
    with path.open(encoding="utf-8") as fh:
        return sum(1 for text in fh if text.strip())


def _input_files(path: Path, split: str | None, include_dev: bool,
                 result: SourceResult) -> list[tuple[Path, str]]:
    """The files to read and the MMedBench split of each (dev files become train with ``include_dev``)."""
    if split is not None and split not in ("train", "test"):
        raise DataError(f"split must be 'train' or 'test', got {split!r}")
    if path.is_file():
        named = split_of(path)
        if split is not None:
            return [(path, split)]
        if named == "dev":
            if not include_dev:
                raise DataError(f"{path} is a dev-split file; pass include_dev=True (read as train) "
                                f"or split='train'/'test'")
            return [(path, "train")]
        return [(path, named or "test")]
    if split is not None:
        raise DataError(f"split={split!r} applies to a single file, not to the folder {path}")
    by_split: dict[str, list[Path]] = {}
    for file in sorted(p for p in path.glob("*.jsonl") if p.is_file()):
        named = split_of(file)
        if named is None:
            result.notes.append(f"ignored {file.name}: no train/dev/test in its name")
            continue
        by_split.setdefault(named, []).append(file)
    if not by_split:
        raise DataError(f"no train/dev/test .jsonl files in {path} (expected e.g. phrases_no_exclude_test.jsonl "
                        f"or test.jsonl)")
    out: list[tuple[Path, str]] = []
    for named, files in sorted(by_split.items()):
        if len(files) > 1:
            raise DataError(f"several {named} files in {path}: {', '.join(f.name for f in files)}; "
                            f"pass one file instead")
        if named == "dev" and not include_dev:
            result.drop("dev split (include_dev=False)", _count_records(files[0]))
            continue
        out.append((files[0], "train" if named == "dev" else named))
    return out


def read_medqa(path: Path, *, name: str, language: str, split: str | None = None, include_dev: bool = False,
               strip_period: bool = True) -> SourceResult:
    """Read MedQA records from a ``.jsonl`` file or a folder of train/dev/test ``.jsonl`` files.

    The split comes from the file name (train -> train, test -> test, dev/validation -> skipped, or
    train with ``include_dev``); a file with no split in its name is ``test`` unless ``split`` says
    otherwise. Ids are ``<name>-<realidx>`` or ``<name>-<file stem>-<line>``.
    """
    result = SourceResult(items=[])
    stats: Counter[str] = Counter()
    seen: dict[str, str] = {}
    for file, file_split in _input_files(Path(path), split, include_dev, result):
        n = 0
        for line, rec in iter_jsonl(file):
            item = parse_medqa_record(rec, name=name, language=language, split=file_split, path=file, line=line,
                                      strip_period=strip_period, stats=stats)
            if item.id in seen:
                raise DataError(f"duplicate id {item.id!r} (first at {seen[item.id]})", path=str(file), line=line,
                                field="realidx")
            seen[item.id] = f"{file}:{line}"
            result.items.append(item)
            n += 1
        result.notes.append(f"{file.name}: {n} items -> {file_split}")
    for what, n in sorted(stats.items()):
        result.notes.append(f"{what}: {n}")
    return result


@register("medqa-usmle", language="en", title="MedQA (USMLE, English)", license="MIT",
          expects="MedQA JSONL (phrases_no_exclude_test.jsonl, test.jsonl) or a folder of train/dev/test JSONL",
          homepage=MEDQA_HOME)
def read_medqa_usmle(path: Path, *, split: str | None = None, include_dev: bool = False,
                     strip_period: bool = True) -> SourceResult:
    """MedQA USMLE questions (original records, or Apollo's re-packed form)."""
    return read_medqa(path, name="medqa-usmle", language="en", split=split, include_dev=include_dev,
                      strip_period=strip_period)


@register("medqa-mcmle", language="zh", title="MedQA (MCMLE, Mainland China)", license="MIT",
          expects="MedQA Mainland JSONL, Apollo's metadata/test/zh/medqa-mcmle.jsonl, or a folder of "
                  "train/dev/test JSONL",
          homepage=MEDQA_HOME)
def read_medqa_mcmle(path: Path, *, split: str | None = None, include_dev: bool = False,
                     strip_period: bool = True) -> SourceResult:
    """MedQA Mainland (MCMLE) questions, original records or Apollo's re-packed form."""
    return read_medqa(path, name="medqa-mcmle", language="zh", split=split, include_dev=include_dev,
                      strip_period=strip_period)
