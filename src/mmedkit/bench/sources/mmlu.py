"""MMLU, the six medical subjects the MMedLM study reports.

Two CSV forms are accepted, detected per file:

* the authors' original (github.com/hendrycks/test, ``data.tar``): no header, columns
  ``question, A, B, C, D, answer`` with the answer as a letter;
* re-packed copies: a header row ``question,choice0,choice1,choice2,choice3,answer`` and the answer
  as a 0-3 index.

Files are ``<root>/{dev,val,test}/<subject>_<split>.csv``. ``test`` -> test split; ``dev`` (the five
few-shot exemplars per subject) -> train; ``val`` is skipped unless ``val_split`` says where it goes.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from mmedkit.bench.items import Item
from mmedkit.bench.sources.base import SourceResult, register
from mmedkit.errors import DataError

SUBJECTS = ("clinical_knowledge", "medical_genetics", "anatomy", "professional_medicine",
            "college_biology", "college_medicine")
"""The medical subjects, in the order the study's tables list them (CK, MG, AN, PM, CB, CM)."""
ALIASES = {"ck": "clinical_knowledge", "mg": "medical_genetics", "an": "anatomy",
           "pm": "professional_medicine", "cb": "college_biology", "cm": "college_medicine"}
SPLITS = {"test": "test", "dev": "train", "val": None}
"""MMLU split -> MMedBench split (``val`` is skipped unless ``val_split`` is given)."""
_OPTION_LETTERS = "ABCD"
_FILE_RE = re.compile(r"^(?P<subject>[a-z_]+?)_(?P<split>dev|val|test)\.csv$")


def parse_subjects(subjects: str | Iterable[str] | None) -> list[str]:
    """Subject names (or the study's abbreviations CK, MG, ...) -> subject names; None -> all six."""
    if subjects is None:
        return list(SUBJECTS)
    names = subjects.split(",") if isinstance(subjects, str) else list(subjects)
    out: list[str] = []
    for raw in names:
        name = raw.strip().lower()
        if not name:
            continue
        name = ALIASES.get(name, name)
        if name not in SUBJECTS:
            raise DataError(f"mmlu: unknown subject {raw.strip()!r}; expected some of {', '.join(SUBJECTS)} "
                            f"(or {', '.join(a.upper() for a in ALIASES)})")
        if name not in out:
            out.append(name)
    if not out:
        raise DataError("mmlu: no subjects selected")
    return out


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """``(first physical line, cells)`` for each non-blank CSV record (quoted fields may span lines)."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        start = 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise DataError(f"malformed CSV: {exc}", path=str(path), line=start) from exc
            if any(c.strip() for c in cells):
                yield start, cells
            start = reader.line_num + 1


def read_csv(path: Path, *, subject: str, split: str, target: str) -> tuple[list[Item], str]:
    """One MMLU CSV file -> items with split ``target``; also returns the detected form.

    The form is ``header`` or ``headerless`` plus ``letter`` (A-D) or ``index`` (0-3) answers.
    Every row must have six cells, a non-empty question and options, and an answer in the file's form.
    """
    items: list[Item] = []
    columns = ["question", *_OPTION_LETTERS, "answer"]
    header = False
    answer_form: str | None = None
    first_form_row = 0
    row = 0
    for line, cells in _rows(path):
        if row == 0 and not header and cells[-1].strip().lower() == "answer":
            if len(cells) != 6 or cells[0].strip().lower() != "question":
                raise DataError(f"unexpected header {cells!r}; expected question, 4 choice columns, answer",
                                path=str(path), line=line)
            header, columns = True, [c.strip() for c in cells]
            continue
        row += 1

        def err(message: str, field: str | None = None, line: int = line, row: int = row) -> DataError:
            return DataError(f"row {row}: {message}", path=str(path), line=line, field=field)

        if len(cells) != 6:
            raise err(f"expected 6 columns ({', '.join(columns)}), got {len(cells)}")
        for name, value in zip(columns[:5], cells[:5], strict=True):
            if not value.strip():
                raise err("empty value", name)
        raw = cells[5].strip()
        if raw.upper() in _OPTION_LETTERS and len(raw) == 1:
            form, letter = "letter", raw.upper()
        elif raw.isascii() and raw.isdigit():
            form = "index"
            if int(raw) > 3:
                raise err(f"answer index {raw} out of range 0-3", columns[5])
            letter = _OPTION_LETTERS[int(raw)]
        else:
            raise err(f"expected an answer letter A-D or an index 0-3, got {raw!r}", columns[5])
        if answer_form is None:
            answer_form, first_form_row = form, row
        elif form != answer_form:
            raise err(f"answer {raw!r} is {'an index' if form == 'index' else 'a letter'}, but this file gives "
                      f"answers as {'indexes' if answer_form == 'index' else 'letters'} "
                      f"(row {first_form_row})", columns[5])
        items.append(Item(
            id=f"mmlu-{subject}-{split}-{row}",
            language="en",
            question=cells[0].strip(),
            options={k: v.strip() for k, v in zip(_OPTION_LETTERS, cells[1:5], strict=True)},
            answer=frozenset({letter}),
            subject=subject,
            split=target,
            meta={"mmlu_split": split, "row": row},
        ))
    return items, f"{'header' if header else 'headerless'}, {answer_form or 'no'} answers"


def _find_root(path: Path) -> Path:
    for cand in (path, path / "data", path / "data" / "mmlu"):
        if any((cand / s).is_dir() for s in SPLITS):
            return cand
    raise DataError(f"mmlu: no dev/, val/ or test/ folder in {path} (expected MMLU's data/ folder with "
                    f"<split>/<subject>_<split>.csv files)")


@register("mmlu", language="en", title="MMLU medical subjects (CK, MG, AN, PM, CB, CM)", license="MIT",
          expects="MMLU's data/ folder with {dev,val,test}/<subject>_<split>.csv (or one such CSV file)",
          homepage="https://github.com/hendrycks/test")
def read_mmlu(path: Path, *, subjects: str | Iterable[str] | None = None, val_split: str | None = None) -> SourceResult:
    """Read the medical subjects of MMLU (``subjects`` narrows them; names or CK, MG, AN, PM, CB, CM).

    ``val_split`` ("train" or "test") imports the val files into that split; by default they are skipped.
    """
    if val_split is not None and val_split not in ("train", "test"):
        raise DataError(f"mmlu: val_split must be 'train', 'test' or None, got {val_split!r}")
    chosen = parse_subjects(subjects)
    path = Path(path)
    if path.is_file():
        m = _FILE_RE.match(path.name)
        if not m:
            raise DataError("mmlu: expected a file named <subject>_{dev,val,test}.csv", path=str(path))
        if m["subject"] not in chosen:
            raise DataError(f"mmlu: {m['subject']!r} is not among the selected subjects", path=str(path))
        files = [(m["subject"], m["split"], path)]
    else:
        root = _find_root(path)
        files = []
        for subject in chosen:
            found = [(subject, s, root / s / f"{subject}_{s}.csv") for s in SPLITS]
            found = [f for f in found if f[2].is_file()]
            if not any(s == "test" for _, s, _ in found):
                raise DataError(f"mmlu: no test file for subject {subject!r} in {root / 'test'}")
            files.extend(found)

    result = SourceResult(items=[])
    forms: Counter[str] = Counter()
    for subject, split, file in files:
        target = SPLITS[split] or val_split
        items, form = read_csv(file, subject=subject, split=split, target=target or "test")
        forms[form] += 1
        if target is None:
            result.drop("val split (pass val_split='train' or 'test' to import it)", len(items))
            continue
        result.items.extend(items)
    result.notes.append("forms: " + "; ".join(f"{form} ({n} files)" for form, n in sorted(forms.items())))
    per_subject = Counter(it.subject for it in result.items if it.split == "test")
    result.notes.append("test items per subject: " + ", ".join(f"{s} {per_subject[s]}" for s in chosen))
    return result
