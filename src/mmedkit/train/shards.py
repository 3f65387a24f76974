"""Corpus shards: the JSONL/Parquet/text files of a source, and the ``(text, language)`` documents they hold.

A source is a file, folder, glob or fsspec URL (``s3://``, ``gs://``, ``hf://``...); records are read by
:func:`mmedkit.records.read_records`, so a bad one is reported with its file, line (Parquet: row) and field.
A plain-text file (``.txt``, optionally compressed; MMedC is released as text) is one document, without a
language field (set the source's language); a folder's text files are read only when it holds no JSONL or
Parquet shard (so notes beside a JSONL corpus stay out).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from mmedkit.errors import DataError
from mmedkit.records import JSONL_SUFFIXES, Record, is_parquet, parquet_columns, read_records

TEXT_SUFFIXES = (".txt", ".txt.gz", ".txt.zst", ".txt.bz2", ".txt.xz")
SHARD_SUFFIXES = (*JSONL_SUFFIXES, ".parquet")
HUB_CORPORA = ("Henrychur/MMedC",)
"""Corpus ids read from the Hugging Face hub (``hf://datasets/<id>``) when no local path has that name."""
AUTO_LANG_FIELDS = ("lang", "language", "metadata.language")
"""Where ``lang_field: auto`` looks for a record's language (``metadata.language``: the corpus stage's output)."""


def expand_source(path: str) -> list[str]:
    """The shard URLs of a file, folder, glob or fsspec URL (folders: every shard below, sorted)."""
    import fsspec

    if path in HUB_CORPORA and not os.path.exists(path):
        return _hub_shards(path)
    fs, root = fsspec.core.url_to_fs(path)
    if "file" in fs.protocol or "local" in fs.protocol:
        root = os.path.realpath(root)  # one cache key per file, however the path is written
    if any(c in root for c in "*?["):
        files = sorted(f for f in fs.glob(root) if not fs.isdir(f))
    elif fs.isdir(root):
        found = sorted(fs.find(root))
        files = ([f for f in found if f.lower().endswith(SHARD_SUFFIXES)]
                 or [f for f in found if f.lower().endswith(TEXT_SUFFIXES)])
    elif fs.isfile(root):
        files = [root]
    else:
        raise DataError(f"corpus source not found: {path}")
    if not files:
        raise DataError(f"no JSONL, Parquet or text shards in {path} (looked for "
                        f"{', '.join((*SHARD_SUFFIXES, *TEXT_SUFFIXES))})")
    return [fs.unstrip_protocol(f) for f in files]


def _hub_shards(repo_id: str) -> list[str]:
    """The shards of a hub corpus, or a clear error offline."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise DataError(f"{repo_id} is a Hugging Face hub dataset and HF_HUB_OFFLINE=1 is set: download it "
                        f"(huggingface-cli download --repo-type dataset {repo_id} --local-dir DIR) and pass DIR")
    try:
        return expand_source(f"hf://datasets/{repo_id}")
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"could not list {repo_id} on the Hugging Face hub: {type(exc).__name__}: {exc}; check your "
                        "network, that you accepted the dataset's terms, and HF_TOKEN; or pass a local folder") from exc


def field_value(rec: dict[str, Any], dotted: str) -> Any:
    """``rec["metadata"]["language"]`` for ``metadata.language``; None where a part is missing."""
    value: Any = rec
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def iter_documents(url: str, text_field: str = "text", lang_field: str | None = None,
                   where: dict[str, Any] | None = None) -> Iterator[tuple[str, str | None]]:
    """``(text, language)`` of each record of one shard that matches ``where``.

    Raises :class:`DataError` naming the file, line (or Parquet row) and field of a bad record.
    """
    where = where or {}
    if url.lower().endswith(TEXT_SUFFIXES):
        yield from _text_document(url, where)
        return
    lang_fields = AUTO_LANG_FIELDS if lang_field == "auto" else (lang_field,) if lang_field else ()
    columns = None
    if is_parquet(url):
        names = parquet_columns(url)
        if text_field.split(".")[0] not in names:
            raise DataError(f"no column {text_field!r} (columns: {', '.join(names)})", path=url, field=text_field)
        columns = [name.split(".")[0] for name in (text_field, *lang_fields, *where)]
    for rec in read_records(url, columns=columns, objects=True):
        doc = _document(rec, text_field, lang_fields, where)
        if doc is not None:
            yield doc


def _text_document(url: str, where: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
    """A plain-text file as one document (no fields: a ``where`` filter cannot apply to it)."""
    import fsspec

    if where:
        raise DataError(f"a text file has no fields to filter on (where: {where})", path=url, field="where")
    with fsspec.open(url, "rb", compression="infer") as fh:
        raw = fh.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc})", path=url) from exc
    if text.strip():
        yield text, None


def _document(rec: Record, text_field: str, lang_fields: tuple[str, ...],
              where: dict[str, Any]) -> tuple[str, str | None] | None:
    if any(field_value(rec.data, k) != v for k, v in where.items()):
        return None
    text = field_value(rec.data, text_field)
    if not isinstance(text, str):
        raise rec.error(f"expected a string, got {type(text).__name__}", field=text_field)
    lang = next((v for v in (field_value(rec.data, f) for f in lang_fields) if v), None)
    return text, (str(lang) if lang else None)
