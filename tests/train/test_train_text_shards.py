"""Plain-text pretraining sources (MMedC is released as text): each file is one document."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from mmedkit.errors import DataError
from mmedkit.train.shards import expand_source, iter_documents


def test_text_files_are_shards_of_one_document(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "a.txt").write_text("Hypertension is common.\n\nIt is treated.", encoding="utf-8")
    with gzip.open(tmp_path / "en" / "b.txt.gz", "wt", encoding="utf-8") as fh:
        fh.write("Diabetes too.")
    (tmp_path / "en" / "empty.txt").write_text("\n", encoding="utf-8")
    urls = expand_source(str(tmp_path))
    assert [u.rsplit("/", 1)[-1] for u in urls] == ["a.txt", "b.txt.gz", "empty.txt"]
    docs = [d for u in urls for d in iter_documents(u, lang_field="auto")]
    assert docs == [("Hypertension is common.\n\nIt is treated.", None), ("Diabetes too.", None)]
    with pytest.raises(DataError, match="no fields to filter on"):
        list(iter_documents(urls[0], where={"label": "medical"}))
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9")
    with pytest.raises(DataError, match="bad.txt.*not UTF-8"):
        list(iter_documents(str(tmp_path / "bad.txt")))


def test_mmedc_hub_id_is_a_clear_error_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match=r"Henrychur/MMedC is a Hugging Face hub dataset and HF_HUB_OFFLINE=1"):
        expand_source("Henrychur/MMedC")
