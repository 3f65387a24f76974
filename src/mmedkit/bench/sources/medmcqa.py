"""MedMCQA: Indian medical entrance exam (AIIMS / NEET PG) questions, four options.

Two forms, detected per file:

* the original release (github.com/medmcqa/medmcqa): ``train.json``, ``dev.json``, ``test.json``,
  JSON lines despite the name, with ``id``, ``question``, ``opa``-``opd``, ``cop`` (the correct option),
  ``exp`` (explanation -> rationale), ``subject_name``, ``topic_name``, ``choice_type``;
* the re-packed form (Apollo's ``metadata/``): ``question``, ``option`` ``"(A) ...\\n(B) ..."``,
  ``anwer`` (sic) ``"(B)"``.

``cop`` is 1-4 in the official release and 0-3 in some copies; the base is detected per file (a 0 means
0-based, a 4 means 1-based, both is an error; only 1-3 seen is taken as 1-based and noted). The official
test set has no answers (``cop`` missing or -1): those records are dropped.

Splits: ``train`` -> train; ``dev`` -> test (MedMCQA's test answers are withheld, so the study, as is
standard, evaluates on dev); ``test`` -> test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmedkit.bench.items import Item
from mmedkit.bench.sources.base import SourceResult, iter_jsonl, register, require
from mmedkit.bench.sources.packed import parse_packed_answer, parse_packed_options
from mmedkit.errors import DataError

SPLITS = {"train": "train", "dev": "test", "validation": "test", "test": "test"}
"""MedMCQA file / folder name -> MMedBench split."""
NO_ANSWER = "no answer (official test set)"
_OPTION_KEYS = {"A": "opa", "B": "opb", "C": "opc", "D": "opd"}


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    for folder in (path, path / "data"):
        found = [folder / f"{stem}{ext}" for stem in SPLITS for ext in (".json", ".jsonl")]
        found = [p for p in found if p.is_file()]
        if found:
            return found
    raise DataError(f"medmcqa: no train/dev/test .json or .jsonl file in {path} or {path / 'data'}")


def _source_split(path: Path, override: str | None) -> tuple[str, str]:
    """(MedMCQA split name, MMedBench split) from the file name or a folder above it."""
    if override is not None:
        if override not in ("train", "test"):
            raise DataError(f"medmcqa: split must be 'train' or 'test', got {override!r}")
        return override, override
    for name in (path.stem, *(p.name for p in path.parents)):
        if name.lower() in SPLITS:
            return name.lower(), SPLITS[name.lower()]
    raise DataError("medmcqa: cannot tell the split from the file name (train/dev/test); pass split='train' or "
                    "split='test'", path=str(path))


def _cop(rec: dict[str, Any], path: Path, line: int) -> int | None:
    """The raw ``cop`` value as an int, or None when the record has no answer (missing, null or -1)."""
    value = rec.get("cop")
    if value is None or value == -1 or value == "-1" or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 4:
        raise DataError(f"expected the correct option as 1-4 (or 0-3), got {value!r:.40}", path=str(path),
                        line=line, field="cop")
    return value


def detect_cop_base(records: list[tuple[int, dict[str, Any]]], path: Path) -> tuple[int, str | None]:
    """``(base, note)``: 0 if some ``cop`` is 0, 1 if some is 4; both raise; only 1-3 -> 1 with a note."""
    zero = four = None
    seen = False
    for line, rec in records:
        cop = _cop(rec, path, line)
        seen = seen or cop is not None
        if cop == 0 and zero is None:
            zero = line
        if cop == 4 and four is None:
            four = line
    if zero is not None and four is not None:
        raise DataError(f"cop 0 (line {zero}) and cop 4 (line {four}) both appear: the file mixes 0-based and "
                        f"1-based answers", path=str(path), field="cop")
    if zero is not None:
        return 0, f"{path.name}: cop is 0-based (cop 0 at line {zero})"
    if four is not None or not seen:
        return 1, None
    return 1, (f"{path.name}: only cop values 1-3 seen, so the base is ambiguous; assumed 1-based like the "
               f"official release")


def _original(line: int, rec: dict[str, Any], *, base: int, path: Path, source_split: str,
              split: str) -> Item | None:
    rec_id = require(rec, "id", (str, int), path=path, line=line)
    question = require(rec, "question", str, path=path, line=line)
    options: dict[str, str] = {}
    for letter, key in _OPTION_KEYS.items():
        if key not in rec:
            raise DataError("missing field (expected a string)", path=str(path), line=line, field=key)
        if not isinstance(rec[key], (str, int, float)) or isinstance(rec[key], bool):
            raise DataError(f"expected a string, got {rec[key]!r:.80}", path=str(path), line=line, field=key)
        options[letter] = str(rec[key]).strip()
    cop = _cop(rec, path, line)
    if cop is None:
        return None
    index = cop - base
    if not 0 <= index <= 3:
        raise DataError(f"cop {cop} is out of range for a {base}-based file", path=str(path), line=line, field="cop")
    exp = rec.get("exp")
    meta: dict[str, Any] = {"medmcqa_split": source_split, "medmcqa_id": str(rec_id)}
    for key, name in (("topic_name", "topic"), ("choice_type", "choice_type")):
        if isinstance(rec.get(key), str) and rec[key].strip():
            meta[name] = rec[key].strip()
    subject = rec.get("subject_name")
    return Item(
        id=f"medmcqa-{rec_id}",
        language="en",
        question=question.strip(),
        options=options,
        answer=frozenset({"ABCD"[index]}),
        rationale=exp.strip() if isinstance(exp, str) and exp.strip() else None,
        subject=subject.strip() if isinstance(subject, str) and subject.strip() else None,
        split=split,
        meta=meta,
    )


def _packed(line: int, rec: dict[str, Any], *, path: Path, source_split: str, split: str,
            strip_period: bool) -> Item:
    question = require(rec, "question", str, path=path, line=line)
    options = parse_packed_options(require(rec, "option", str, path=path, line=line), path=str(path), line=line,
                                   strip_period=strip_period)
    key = "anwer" if "anwer" in rec else "answer"
    answer = parse_packed_answer(require(rec, key, str, path=path, line=line), options, path=str(path), line=line,
                                 field=key)
    meta: dict[str, Any] = {"medmcqa_split": source_split}
    if isinstance(rec.get("source"), str):
        meta["source"] = rec["source"]
    return Item(id=f"medmcqa-{source_split}-{line}", language="en", question=question.strip(), options=options,
                answer=frozenset({answer}), split=split, meta=meta)


@register("medmcqa", language="en", title="MedMCQA", license="MIT",
          expects="MedMCQA's folder with train.json / dev.json / test.json (JSON lines), or one such file; "
                  "or a re-packed JSONL file (question, option, anwer)",
          homepage="https://medmcqa.github.io")
def read_medmcqa(path: Path, *, split: str | None = None, strip_period: bool = True) -> SourceResult:
    """Read MedMCQA (either form, per file). ``split`` forces the split when file names do not tell it.

    ``strip_period`` removes the ``.`` that the re-packed form appends to every option.

    Options with empty text are left out (counted in ``dropped``) rather than shown as blank choices.
    """
    result = SourceResult(items=[])
    for file in _files(Path(path)):
        source_split, target = _source_split(file, split)
        records = list(iter_jsonl(file))
        if not records:
            continue
        first_line, first = records[0]
        if "opa" in first:
            base, note = detect_cop_base(records, file)
            if note:
                result.notes.append(note)
            for line, rec in records:
                item = _original(line, rec, base=base, path=file, source_split=source_split, split=target)
                if item is None:
                    result.drop(NO_ANSWER)
                elif not all(item.options.values()):
                    result.drop("empty option text")
                else:
                    result.items.append(item)
        elif "option" in first:
            result.notes.append(f"{file.name}: re-packed form (option / anwer)")
            result.items.extend(_packed(line, rec, path=file, source_split=source_split, split=target,
                                        strip_period=strip_period) for line, rec in records)
        else:
            raise DataError("neither MedMCQA form: expected opa-opd and cop, or option and anwer",
                            path=str(file), line=first_line, field="opa")
    seen: set[str] = set()
    for it in result.items:
        if it.id in seen:
            raise DataError(f"medmcqa: duplicate item id {it.id!r} (from two files mapped to the same split?)")
        seen.add(it.id)
    return result
