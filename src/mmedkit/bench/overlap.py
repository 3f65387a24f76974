"""Contamination check: which test questions share a long n-gram with a training corpus.

A test item is flagged when its question shares a word 13-gram (space-delimited languages) or a
character 50-gram (Chinese, Japanese) with any document of the corpus, the usual criterion for
benchmark contamination. Test n-grams are hashed into one table, and the corpus is streamed
once, so corpora far larger than memory can be checked.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmedkit.bench.items import Item
from mmedkit.errors import DataError
from mmedkit.languages import LANGUAGES, get_language
from mmedkit.records import JSONL_SUFFIXES, is_parquet, parquet_columns, read_records
from mmedkit.text import CJK, script_re

WORD_N = 13
CHAR_N = 50
_SPACE_RE = re.compile(r"\s+")
_CJK_RE = script_re(CJK)


def _h(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def word_ngrams(text: str, n: int = WORD_N) -> Iterator[int]:
    """Hashes of lower-cased word n-grams."""
    words = [w.lower() for w in LANGUAGES["en"].segment(text)]
    for i in range(len(words) - n + 1):
        yield _h(" ".join(words[i:i + n]))


def char_ngrams(text: str, n: int = CHAR_N) -> Iterator[int]:
    """Hashes of character n-grams of the text with whitespace removed (for zh/ja)."""
    s = _SPACE_RE.sub("", text)
    for i in range(len(s) - n + 1):
        yield _h(s[i:i + n])


def item_ngrams(item: Item, *, word_n: int = WORD_N, char_n: int = CHAR_N) -> set[int]:
    """The n-grams of an item's question, by the rule of its language."""
    if get_language(item.language).space_delimited:
        return set(word_ngrams(item.question, word_n))
    return set(char_ngrams(item.question, char_n))


def doc_ngrams(text: str, *, word_n: int = WORD_N, char_n: int = CHAR_N) -> Iterator[int]:
    """Both kinds of n-gram of a corpus document (character n-grams only where CJK text occurs)."""
    yield from word_ngrams(text, word_n)
    if _CJK_RE.search(text):
        yield from char_ngrams(text, char_n)


def iter_corpus(path: str | os.PathLike[str], text_field: str = "text") -> Iterator[tuple[str, str]]:
    """``(document id, text)`` from JSONL (plain or compressed), Parquet or text files, or a folder of them.

    An MMedBench-layout folder yields its Train split (question and options), so a benchmark's own
    training split can be checked against its test split.
    """
    root = Path(path)
    if root.is_dir() and (root / "Train").is_dir():
        from mmedkit.bench.loader import load_benchmark

        for it in load_benchmark(root, split="train", skip_invalid=True):
            yield f"train:{it.id}", it.question + " " + " ".join(it.options.values())
        return
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    if not files:
        raise DataError(f"corpus not found or empty: {root}")
    for f in files:
        name = f.name.lower()
        if name.endswith(JSONL_SUFFIXES):
            for rec in read_records(f):
                text = rec.data.get(text_field) if isinstance(rec.data, dict) else None
                if not isinstance(text, str):
                    raise rec.error(f"no string field {text_field!r}", field=text_field)
                yield f"{f}:{rec.line}", text
        elif is_parquet(name):
            if text_field not in parquet_columns(f):
                raise DataError(f"no column {text_field!r}", path=str(f), field=text_field)
            for rec in read_records(f, columns=[text_field]):
                yield f"{f}:{rec.line}", rec.data.get(text_field) or ""
        elif name.endswith((".txt", ".md")):
            yield str(f), f.read_text(encoding="utf-8", errors="replace")


@dataclass
class OverlapReport:
    """Flagged test items per language, with one matching corpus document each."""

    n_items: dict[str, int] = field(default_factory=dict)
    flagged: dict[str, dict[str, str]] = field(default_factory=dict)
    """item id -> first corpus document that shares an n-gram with it."""
    languages: dict[str, str] = field(default_factory=dict)
    documents: int = 0

    def summary(self) -> dict[str, Any]:
        """Counts and rates per language, and the flagged ids."""
        per: dict[str, dict[str, Any]] = {}
        for lang, n in self.n_items.items():
            hits = sorted(i for i, lg in self.languages.items() if lg == lang and i in self.flagged)
            per[lang] = {"items": n, "flagged": len(hits), "rate": round(100 * len(hits) / n, 2) if n else 0.0,
                         "ids": hits}
        return {"documents_scanned": self.documents, "criterion": f"word {WORD_N}-gram / character {CHAR_N}-gram",
                "per_language": per, "matches": self.flagged}


def find_overlap(items: Iterable[Item], corpus: Iterable[tuple[str, str]], *, word_n: int = WORD_N,
                 char_n: int = CHAR_N) -> OverlapReport:
    """Flag the items whose question shares an n-gram with a corpus document."""
    report = OverlapReport()
    index: dict[int, list[str]] = {}
    for it in items:
        report.n_items[it.language] = report.n_items.get(it.language, 0) + 1
        report.languages[it.id] = it.language
        for g in item_ngrams(it, word_n=word_n, char_n=char_n):
            index.setdefault(g, []).append(it.id)
    for doc_id, text in corpus:
        report.documents += 1
        for g in doc_ngrams(text, word_n=word_n, char_n=char_n):
            ids = index.get(g)
            if ids:
                for i in ids:
                    report.flagged.setdefault(i, doc_id)
    return report
