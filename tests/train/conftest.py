"""Fixtures shared by the training tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmedkit.bench.loader import load_benchmark


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Medical text in six languages (the demo items' questions and rationales) as a JSONL shard."""
    path = tmp_path_factory.mktemp("corpus") / "docs.jsonl"
    recs = [{"text": f"{it.question}\n{it.rationale or ''}", "lang": it.language}
            for split in ("train", "test") for it in load_benchmark("demo", split=split)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    return path
