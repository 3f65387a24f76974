"""The contamination check."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mmedkit.bench.loader import demo_root, load_benchmark
from mmedkit.bench.overlap import find_overlap, iter_corpus
from mmedkit.cli import app
from mmedkit.languages import get_language


def _corpus(tmp_path: Path, docs: list[str]) -> Path:
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(json.dumps({"text": d}, ensure_ascii=False) for d in docs) + "\n", encoding="utf-8")
    return path


def test_verbatim_question_is_flagged_and_short_overlap_is_not(tmp_path: Path) -> None:
    test = load_benchmark("demo")
    en = next(it for it in test if it.language == "en" and len(it.question.split()) > 20)
    zh = next(it for it in test if it.language == "zh" and len(it.question) > 55)
    fr = next(it for it in test if it.language == "fr")
    twelve = " ".join(get_language("fr").segment(fr.question)[:12])
    corpus = _corpus(tmp_path, [
        "Study notes. " + en.question.upper() + " End of notes.",  # case differs: still the same 13-grams
        "论坛帖子：" + " ".join(zh.question) + "。",  # spaces inserted between characters
        "Xyzzy : " + twelve + " plugh.",  # only 12 shared words
        "Unrelated text about cooking pasta with tomatoes and basil.",
    ])
    report = find_overlap(test, iter_corpus(corpus))
    assert set(report.flagged) == {en.id, zh.id}
    summary = report.summary()
    assert summary["documents_scanned"] == 4
    assert summary["per_language"]["en"]["flagged"] == 1 and summary["per_language"]["fr"]["flagged"] == 0


def test_demo_train_split_does_not_contaminate_demo_test() -> None:
    report = find_overlap(load_benchmark("demo"), iter_corpus(demo_root()))
    assert report.documents == 60 and report.flagged == {}


def test_overlap_cli_writes_report(tmp_path: Path) -> None:
    item = load_benchmark("demo", langs="es")[0]
    corpus = _corpus(tmp_path, [f"Copia: {item.question}"])
    res = CliRunner().invoke(app, ["bench", "overlap", "--suite", "demo", "--corpus", str(corpus),
                                   "--out", str(tmp_path / "report.json")])
    assert res.exit_code == 0, res.output
    assert "es: 1 of 10 test items overlap (10.0%)" in res.output
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["per_language"]["es"]["ids"] == [item.id]
