"""PubMedQA (PQA-L): 1,000 expert-labelled yes/no/maybe questions on PubMed abstracts.

Input: PubMedQA's ``data/`` folder (github.com/pubmedqa/pubmedqa) with ``ori_pqal.json``
(records keyed by PMID) and ``test_ground_truth.json`` (the official 500 test PMIDs -> label).
The 500 official test PMIDs form the test split, the other 500 the train split.

Question text: the abstract, one labelled paragraph a line, then the question::

    Context:
    BACKGROUND: Programmed cell death (PCD) is ...
    RESULTS: The following paper elucidates ...

    Question: Do mitochondria play a role in remodelling lace plant leaves during programmed cell death?

Options are always ``A: yes``, ``B: no``, ``C: maybe``; the rationale is ``LONG_ANSWER``
(the abstract's conclusion).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mmedkit.bench.items import Item
from mmedkit.bench.sources.base import SourceResult, register
from mmedkit.errors import DataError
from mmedkit.records import read_json

OPTIONS = {"A": "yes", "B": "no", "C": "maybe"}
_LETTER = {text: letter for letter, text in OPTIONS.items()}
_DATA_FILE = "ori_pqal.json"
_TEST_FILE = "test_ground_truth.json"
_KEY_LINE = re.compile(r'^\s*"(\d+)"\s*:')


def _find_files(path: Path) -> tuple[Path, Path]:
    """``ori_pqal.json`` and ``test_ground_truth.json`` from the data folder, the repo root or one of the files."""
    if path.is_file():
        folder = path.parent
    elif (path / _DATA_FILE).is_file():
        folder = path
    else:
        folder = path / "data"
    data, test = folder / _DATA_FILE, folder / _TEST_FILE
    for needed in (data, test):
        if not needed.is_file():
            raise DataError(f"pubmedqa: {needed.name} not found in {folder} (expected PubMedQA's data/ folder "
                            f"with {_DATA_FILE} and {_TEST_FILE})")
    return data, test


def _key_lines(path: Path) -> dict[str, int]:
    """Line of each PMID key in a pretty-printed JSON file (first occurrence), for error messages."""
    out: dict[str, int] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, text in enumerate(fh, start=1):
            m = _KEY_LINE.match(text)
            if m:
                out.setdefault(m.group(1), lineno)
    return out


def _field(rec: dict[str, Any], key: str, kind: type, err: Any) -> Any:
    if key not in rec:
        raise err("missing field", key)
    value = rec[key]
    if not isinstance(value, kind) or (isinstance(value, str) and not value.strip()):
        raise err(f"expected {'a non-empty string' if kind is str else 'a ' + kind.__name__}, got {value!r:.80}", key)
    return value


def format_question(question: str, contexts: list[str], labels: list[str]) -> str:
    """The abstract (``LABEL: paragraph`` a line) followed by the question, in the documented format."""
    paragraphs = [f"{label.strip()}: {text.strip()}" if label.strip() else text.strip()
                  for text, label in zip(contexts, labels, strict=True)]
    return "Context:\n" + "\n".join(paragraphs) + f"\n\nQuestion: {question.strip()}"


def _item(pmid: str, rec: Any, *, split: str, path: Path, line: int | None, context: bool) -> Item:
    def err(message: str, field: str | None = None) -> DataError:
        return DataError(f"PMID {pmid}: {message}", path=str(path), line=line, field=field)

    if not isinstance(rec, dict):
        raise err(f"expected an object, got {type(rec).__name__}")
    question = _field(rec, "QUESTION", str, err)
    contexts = _field(rec, "CONTEXTS", list, err)
    labels = _field(rec, "LABELS", list, err)
    if not contexts or not all(isinstance(c, str) and c.strip() for c in contexts):
        raise err("expected a non-empty list of non-empty strings", "CONTEXTS")
    if len(labels) != len(contexts) or not all(isinstance(lb, str) for lb in labels):
        raise err(f"expected one string label per context ({len(contexts)}), got {labels!r:.80}", "LABELS")
    decision = _field(rec, "final_decision", str, err).strip().lower()
    if decision not in _LETTER:
        raise err(f"expected yes, no or maybe, got {rec['final_decision']!r}", "final_decision")
    long_answer = rec.get("LONG_ANSWER")
    meta: dict[str, Any] = {"pmid": pmid}
    if rec.get("YEAR"):
        meta["year"] = str(rec["YEAR"])
    if isinstance(rec.get("MESHES"), list) and rec["MESHES"]:
        meta["meshes"] = [str(m) for m in rec["MESHES"]]
    return Item(
        id=f"pubmedqa-{pmid}",
        language="en",
        question=format_question(question, contexts, labels) if context else question.strip(),
        options=dict(OPTIONS),
        answer=frozenset({_LETTER[decision]}),
        rationale=long_answer.strip() if isinstance(long_answer, str) and long_answer.strip() else None,
        split=split,
        meta=meta,
    )


@register("pubmedqa", language="en", title="PubMedQA (PQA-L, expert-labelled)", license="MIT",
          expects="PubMedQA's data/ folder with ori_pqal.json and test_ground_truth.json",
          homepage="https://github.com/pubmedqa/pubmedqa")
def read_pubmedqa(path: Path, *, context: bool = True) -> SourceResult:
    """Read PQA-L: the official 500 test PMIDs -> test, the other 500 -> train.

    ``context=False`` keeps only the question (no abstract) in the question text.
    A test label that disagrees with the record's ``final_decision`` raises DataError.
    """
    data_path, test_path = _find_files(Path(path))
    data = read_json(data_path)
    truth = read_json(test_path)
    for p, obj in ((data_path, data), (test_path, truth)):
        if not isinstance(obj, dict):
            raise DataError(f"expected a JSON object keyed by PMID, got {type(obj).__name__}", path=str(p))
    data_lines, truth_lines = _key_lines(data_path), _key_lines(test_path)

    result = SourceResult(items=[])
    for pmid, rec in data.items():
        split = "test" if pmid in truth else "train"
        result.items.append(_item(str(pmid), rec, split=split, path=data_path, line=data_lines.get(pmid),
                                  context=context))
    by_id = {it.meta["pmid"]: it for it in result.items}
    for pmid, label in truth.items():
        line = truth_lines.get(pmid)
        if pmid not in by_id:
            raise DataError(f"test PMID {pmid} is not in {_DATA_FILE}", path=str(test_path), line=line)
        if not isinstance(label, str) or label.strip().lower() not in _LETTER:
            raise DataError(f"PMID {pmid}: expected yes, no or maybe, got {label!r}", path=str(test_path), line=line)
        gold = OPTIONS[next(iter(by_id[pmid].answer))]
        if label.strip().lower() != gold:
            raise DataError(f"PMID {pmid}: test label {label!r} disagrees with final_decision {gold!r} "
                            f"in {data_path}", path=str(test_path), line=line)
    n_test = sum(it.split == "test" for it in result.items)
    result.notes.append(f"{n_test} test items (official test_ground_truth.json ids, labels verified against "
                        f"final_decision), {len(result.items) - n_test} train items")
    return result
