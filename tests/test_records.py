"""The shared record reader: JSONL (plain, compressed), Parquet, fsspec URLs; errors name file:line."""

from __future__ import annotations

import bz2
import gzip
import json
from pathlib import Path

import pytest

from mmedkit.errors import DataError
from mmedkit.records import Record, parquet_columns, read_json, read_records

ROWS = [{"id": "a", "text": "one"}, {"id": "b", "text": "two"}]


def _jsonl(rows: list[object]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.mark.parametrize("name,write", [
    ("x.jsonl", lambda p, s: p.write_text(s, encoding="utf-8")),
    ("x.ndjson", lambda p, s: p.write_text(s, encoding="utf-8")),
    ("x.jsonl.gz", lambda p, s: p.write_bytes(gzip.compress(s.encode()))),
    ("x.jsonl.bz2", lambda p, s: p.write_bytes(bz2.compress(s.encode()))),
])
def test_jsonl_forms_read_the_same(tmp_path: Path, name: str, write) -> None:
    path = tmp_path / name
    write(path, _jsonl(ROWS[:1]) + "\n" + _jsonl(ROWS[1:]))  # a blank line keeps its number
    recs = list(read_records(path))
    assert [r.data for r in recs] == ROWS
    assert [r.line for r in recs] == [1, 3]
    assert recs[0].path == str(path)


def test_parquet_rows_and_columns(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "x.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path, row_group_size=1)
    assert [(r.line, r.data) for r in read_records(path)] == [(1, ROWS[0]), (2, ROWS[1])]
    assert [r.data for r in read_records(path, columns=["text", "missing"])] == [{"text": "one"}, {"text": "two"}]
    assert parquet_columns(path) == ["id", "text"]


def test_fsspec_url() -> None:
    fsspec = pytest.importorskip("fsspec")
    with fsspec.open("memory://records/x.jsonl.gz", "wb", compression="gzip") as fh:
        fh.write(_jsonl(ROWS).encode())
    recs = list(read_records("memory://records/x.jsonl.gz"))
    assert [r.data for r in recs] == ROWS and recs[1].path == "memory://records/x.jsonl.gz"


@pytest.mark.parametrize("lines,objects,message", [
    (['{"id": "a"}', '{"id": '], False, r"x\.jsonl:2: malformed JSON: Expecting value"),
    (['{"id": "a"}', '[1, 2]'], True, r"x\.jsonl:2: expected a JSON object, got list"),
])
def test_bad_lines_name_file_and_line(tmp_path: Path, lines: list[str], objects: bool, message: str) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=message):
        list(read_records(path, objects=objects))
    skipped: list[str] = []
    recs = list(read_records(path, objects=objects, skip_invalid=True, on_skip=lambda e: skipped.append(str(e))))
    assert [r.data for r in recs] == [{"id": "a"}] and len(skipped) == 1 and ":2: " in skipped[0]


def test_record_error_and_read_json(tmp_path: Path) -> None:
    err = Record({"q": 1}, "f.jsonl", 7).error("missing question", field="question")
    assert str(err) == "f.jsonl:7: missing question (field 'question')" and err.line == 7
    path = tmp_path / "x.json"
    path.write_text('{"a": 1,\n "b": }', encoding="utf-8")
    with pytest.raises(DataError, match=r"x\.json:2: malformed JSON: Expecting value at column 7"):
        read_json(path)
    path.write_text('{"a": 1}', encoding="utf-8")
    assert read_json(path) == {"a": 1}
