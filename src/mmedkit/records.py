"""The one record reader: JSONL (plain or compressed) and Parquet, local paths or fsspec URLs.

Every record comes with the file and line (Parquet: row, from 1) it was read from, so a caller's
complaint about it names the place::

    for rec in read_records("data/Test/English.jsonl", objects=True):
        if "question" not in rec.data:
            raise rec.error("missing field", field="question")   # DataError "…/English.jsonl:12: … (field …)"

Compression follows the suffix (``.gz``, ``.bz2``, ``.xz`` with the standard library; anything else fsspec
infers, e.g. ``.zst``). URLs (``s3://``, ``memory://``, …) go through fsspec; Parquet needs pyarrow.
Both are optional dependencies, imported only when a file needs them.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import json
import lzma
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from mmedkit.errors import DataError

__all__ = ["JSONL_SUFFIXES", "Record", "is_parquet", "parquet_columns", "read_json", "read_records"]

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".json.gz", ".jsonl.bz2", ".jsonl.xz", ".jsonl.zst")
"""File names read as JSON lines (a bare ``.json.gz`` is taken as JSON lines too, as corpus dumps are)."""

_STDLIB_OPENERS: dict[str, Callable[..., IO[str]]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_FSSPEC_COMPRESSIONS = (".zst", ".lz4", ".snappy")


@dataclass(frozen=True, slots=True)
class Record:
    """One parsed record and where it was read from."""

    data: Any
    path: str
    line: int
    """1-based line of a JSONL file, or 1-based row of a Parquet file."""

    def error(self, message: str, field: str | None = None) -> DataError:
        """A :class:`DataError` about this record (``path:line: message (field …)``)."""
        return DataError(message, path=self.path, line=self.line, field=field)


def is_parquet(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is read as Parquet (by its suffix)."""
    return os.fspath(path).lower().endswith(".parquet")


def _is_url(path: str) -> bool:
    return "://" in path


def _open_text(path: str) -> IO[str]:
    suffix = os.path.splitext(path)[1].lower()
    if _is_url(path) or suffix in _FSSPEC_COMPRESSIONS:
        import fsspec

        return fsspec.open(path, "rt", encoding="utf-8", errors="surrogateescape", compression="infer").open()
    return _STDLIB_OPENERS.get(suffix, open)(path, "rt", encoding="utf-8", errors="surrogateescape")


def _parse_line(text: str, path: str, line: int) -> Any:
    """The JSON value of one line, or :class:`DataError` (not UTF-8, malformed, nested too deeply)."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:  # an undecodable byte, kept as a lone surrogate by the reader
            byte = ord(text[exc.start]) - 0xDC00
            raise DataError(f"not UTF-8 text: byte 0x{byte:02x} at column {exc.start + 1}", path=path,
                            line=line) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"malformed JSON: {exc.msg} at column {exc.colno}", path=path, line=line) from exc
    except RecursionError:
        raise DataError("malformed JSON: nested too deeply", path=path, line=line) from None


def read_records(path: str | os.PathLike[str], *, columns: Sequence[str] | None = None, objects: bool = False,
                 skip_invalid: bool = False, on_skip: Callable[[DataError], None] | None = None) -> Iterator[Record]:
    """The records of one JSONL or Parquet file, in file order; blank JSONL lines are ignored.

    A line that is not UTF-8 (``not UTF-8 text: byte 0xff at column N``) or not JSON (``malformed JSON: … at
    column N``) or, with ``objects``, a line that is not a JSON object (``expected a JSON object, got list``)
    raises :class:`DataError` naming file and line; with ``skip_invalid`` it is passed to ``on_skip`` instead
    and reading goes on. ``columns`` restricts the Parquet columns read (those absent from the file are left
    out).
    """
    path = os.fspath(path)
    if is_parquet(path):
        yield from _parquet_records(path, columns)
        return
    with _open_text(path) as fh:
        for line, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                data = _parse_line(text, path, line)
            except DataError as exc:
                err = exc
            else:
                if not objects or isinstance(data, dict):
                    yield Record(data, path, line)
                    continue
                err = DataError(f"expected a JSON object, got {type(data).__name__}", path=path, line=line)
            if not skip_invalid:
                raise err
            if on_skip is not None:
                on_skip(err)


@contextlib.contextmanager
def _open_parquet(path: str) -> Iterator[Any]:
    import pyarrow.parquet as pq

    if not _is_url(path):
        with pq.ParquetFile(path) as pf:
            yield pf
        return
    import fsspec

    with fsspec.open(path, "rb") as fh, pq.ParquetFile(fh) as pf:
        yield pf


def parquet_columns(path: str | os.PathLike[str]) -> list[str]:
    """The column names of a Parquet file."""
    with _open_parquet(os.fspath(path)) as pf:
        return list(pf.schema_arrow.names)


def _parquet_records(path: str, columns: Sequence[str] | None) -> Iterator[Record]:
    with _open_parquet(path) as pf:
        names = pf.schema_arrow.names
        wanted = None if columns is None else [c for c in dict.fromkeys(columns) if c in names]
        row = 0
        for batch in pf.iter_batches(columns=wanted):
            for data in batch.to_pylist():
                row += 1
                yield Record(data, path, row)


def read_json(path: str | os.PathLike[str]) -> Any:
    """A whole JSON file; a parse error is a :class:`DataError` naming the file, line and column."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataError(f"malformed JSON: {exc.msg} at column {exc.colno}", path=path, line=exc.lineno) from exc
