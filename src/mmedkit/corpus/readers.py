"""Readers that never stop on a bad record: malformed input is counted and written aside with its reason.

datatrove's ``JsonlReader`` skips undecodable JSON with a log line but abandons the rest of a file at
the first invalid UTF-8 byte, and both its readers skip records without text silently. These
subclasses read the same formats (fsspec paths, compression inferred) and hand every record they
cannot use to a ``malformed_writer`` as a document whose ``text`` is the raw record (decoded with
replacement characters) and whose metadata holds ``malformed_reason``, ``malformed_file`` and
``malformed_line`` (plus ``raw_base64`` for bytes that are not UTF-8). Each reason is counted in the
step's stats as ``malformed_<reason>``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import orjson
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.readers import JsonlReader, ParquetReader
from datatrove.pipeline.readers.base import BaseDiskReader
from datatrove.pipeline.writers.disk_base import DiskWriter

INVALID_UTF8 = "invalid UTF-8"
BAD_JSON = "bad JSON"
NOT_OBJECT = "not a JSON object"
MISSING_TEXT = "missing text"
EMPTY_TEXT = "empty text"
UNREADABLE = "unreadable file"


class _TolerantMixin(BaseDiskReader):
    """Shared bookkeeping: the malformed writer, its rank, and the checks on a parsed record."""

    _rank: int = 0

    def __init__(self, data_folder: Any, malformed_writer: DiskWriter | None = None, **kwargs: Any) -> None:
        super().__init__(data_folder, **kwargs)
        self.malformed_writer = malformed_writer

    def _set_aside(self, raw: str, filepath: str, line: int | None, reason: str, **extra: Any) -> None:
        self.stat_update(f"malformed_{reason}")
        if self.malformed_writer is None:
            return
        meta = {"malformed_reason": reason, "malformed_file": self.data_folder.resolve_paths(filepath),
                "malformed_line": line, **extra}
        doc_id = f"{filepath}/{line}" if line is not None else filepath
        self.malformed_writer.write(Document(text=raw, id=doc_id, metadata=meta), rank=self._rank)

    def _check_record(self, data: Any) -> str | None:
        if not isinstance(data, dict):
            return NOT_OBJECT
        text = data.get(self.text_key)
        if not isinstance(text, str):
            return MISSING_TEXT
        if not text.strip():
            return EMPTY_TEXT
        return None

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        self._rank = rank
        if self.malformed_writer is None:
            yield from super().run(data, rank, world_size)
            return
        with self.malformed_writer:
            yield from super().run(data, rank, world_size)


class TolerantJsonlReader(_TolerantMixin, JsonlReader):
    """JSONL reader that sets aside invalid UTF-8, bad JSON, non-objects and records without text."""

    name = "🐿 JSONL (tolerant)"

    def read_file(self, filepath: str) -> Iterator[Document]:
        line_no = 0
        try:
            with self.data_folder.open(filepath, "rb", compression=self.compression) as fh:
                for line_no, raw in enumerate(fh, 1):
                    with self.track_time():
                        doc = self._parse(raw, filepath, line_no)
                    if doc is not None:
                        yield doc
        except (OSError, EOFError, ValueError) as exc:  # truncated or corrupt compressed file
            self._set_aside("", filepath, line_no + 1, UNREADABLE, error=f"{type(exc).__name__}: {exc}")

    def _parse(self, raw: bytes, filepath: str, line_no: int) -> Document | None:
        if not raw.strip():
            return None  # blank line: not a record
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._set_aside(raw.decode("utf-8", errors="replace"), filepath, line_no, INVALID_UTF8,
                            raw_base64=base64.b64encode(raw).decode("ascii"), error=str(exc))
            return None
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            self._set_aside(line.rstrip("\r\n"), filepath, line_no, BAD_JSON, error=str(exc))
            return None
        reason = self._check_record(data)
        if reason:
            self._set_aside(line.rstrip("\r\n"), filepath, line_no, reason)
            return None
        return self.get_document_from_dict(data, filepath, line_no - 1)


class TolerantParquetReader(_TolerantMixin, ParquetReader):
    """Parquet reader that sets aside rows without text and files pyarrow cannot read."""

    name = "📒 Parquet (tolerant)"

    def read_file(self, filepath: str) -> Iterator[Document]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        row = 0
        try:
            with self.data_folder.open(filepath, "rb") as fh, pq.ParquetFile(fh) as pqf:
                for batch in pqf.iter_batches(batch_size=self.batch_size):
                    with self.track_time("batch"):
                        docs = []
                        for record in batch.to_pylist():
                            reason = self._check_record(record)
                            if reason:
                                self._set_aside(json.dumps(record, ensure_ascii=False, default=str), filepath,
                                                row, reason)
                            else:
                                docs.append(self.get_document_from_dict(record, filepath, row))
                            row += 1
                    yield from docs
        except (OSError, pa.ArrowException) as exc:
            self._set_aside("", filepath, row, UNREADABLE, error=f"{type(exc).__name__}: {exc}")


class TextFileReader(_TolerantMixin, BaseDiskReader):
    """One document per plain-text file (``*.txt``, compression inferred from the name), its id the file path;
    empty, undecodable or unreadable files are set aside."""

    name = "📄 Text files"

    def __init__(self, data_folder: Any, malformed_writer: DiskWriter | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("glob_pattern", "**/*.txt*")
        super().__init__(data_folder, malformed_writer, **kwargs)

    def read_file(self, filepath: str) -> Iterator[Document]:
        try:
            with self.data_folder.open(filepath, "rb", compression="infer") as fh:
                raw = fh.read()
        except (OSError, EOFError, ValueError) as exc:
            self._set_aside("", filepath, None, UNREADABLE, error=f"{type(exc).__name__}: {exc}")
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._set_aside(raw.decode("utf-8", errors="replace"), filepath, None, INVALID_UTF8, error=str(exc))
            return
        if not text.strip():
            self._set_aside(text, filepath, None, EMPTY_TEXT)
            return
        yield self.get_document_from_dict({self.text_key: text, self.id_key: filepath}, filepath, 0)


class RankFileReader(JsonlReader):
    """Read back exactly the file a previous stage wrote for this rank (``{rank:05d}.jsonl``).

    Dedup stages address documents by (rank, position), so the stage that filters must read the very
    file the signature stage saw, in order; a rank whose file is absent (no document survived) reads
    nothing. Sharding by file listing would shift ranks whenever a file is missing.
    """

    name = "🐿 JSONL (rank file)"

    def __init__(self, data_folder: Any, template: str = "{rank:05d}.jsonl") -> None:
        super().__init__(data_folder, compression=None, add_file_path=False)
        self.template = template

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        name = self.template.format(rank=rank)
        if not self.data_folder.isfile(name):
            return
        for doc in self.read_files_shard([name]):
            self.update_doc_stats(doc)
            yield doc
