"""Plain-text corpus files (MMedC is released as text): one document per file, bad files set aside."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

pytest.importorskip("datatrove")

from mmedkit.corpus.config import InputSpec  # noqa: E402
from mmedkit.corpus.readers import TextFileReader  # noqa: E402


def test_one_document_per_text_file_and_bad_files_counted(tmp_path: Path) -> None:
    (tmp_path / "fr").mkdir()
    (tmp_path / "a.txt").write_text("Le diabète de type 2.\n\nDeuxième paragraphe.", encoding="utf-8")
    with gzip.open(tmp_path / "fr" / "b.txt.gz", "wt", encoding="utf-8") as fh:
        fh.write("L'insuline est produite par le pancréas.")
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9")
    (tmp_path / "notes.md").write_text("not read", encoding="utf-8")
    reader = TextFileReader(str(tmp_path), default_metadata={"source": "mmedc"})
    docs = sorted(reader.run(), key=lambda d: d.id)
    assert [d.id for d in docs] == ["a.txt", "fr/b.txt.gz"]
    assert docs[0].text == "Le diabète de type 2.\n\nDeuxième paragraphe."
    assert docs[1].text.startswith("L'insuline") and docs[1].metadata["source"] == "mmedc"
    assert reader.stats.stats["malformed_empty text"].total == 1
    assert reader.stats.stats["malformed_invalid UTF-8"].total == 1


def test_text_format_is_inferred_from_the_path_or_glob() -> None:
    assert InputSpec(path="corpus/english.txt").format == "text"
    assert InputSpec(path="corpus", glob="**/*.txt").format == "text"
    assert InputSpec(path="corpus", format="text").format == "text"
