"""The `mmed` command line: thin wrappers, clear errors, the demo job."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mmedkit.cli import app

runner = CliRunner()


def test_bench_run_on_bad_data_names_file_line_and_field(tmp_path: Path, tiny_model_dir: Path) -> None:
    bad = tmp_path / "data" / "Test" / "Russian.jsonl"
    bad.parent.mkdir(parents=True)
    good = {"question": "Контекст: ... Вопрос: нужен ли антибиотик?", "options": {"A": "да", "B": "нет"},
            "answer_idx": "B"}
    bad.write_text(json.dumps(good, ensure_ascii=False) + "\n" + json.dumps({**good, "answer_idx": "C"}) + "\n",
                   encoding="utf-8")
    res = runner.invoke(app, ["bench", "run", "--model", str(tiny_model_dir), "--data", str(tmp_path / "data"),
                              "--langs", "ru", "--out", str(tmp_path / "out"), "--no-progress"])
    assert res.exit_code == 2
    assert "Russian.jsonl:2" in res.output and "answer_idx" in res.output and "not among the options" in res.output
    res = runner.invoke(app, ["bench", "run", "--model", str(tiny_model_dir), "--data", str(tmp_path / "data"),
                              "--langs", "ru", "--out", str(tmp_path / "out"), "--no-progress", "--skip-invalid"])
    assert res.exit_code == 0, res.output
    assert "skipped" in res.output and json.loads((tmp_path / "out" / "results.json").read_text())[
        "metrics"]["overall"]["n"] == 1


def test_bench_run_unknown_backend_and_mode(tmp_path: Path, tiny_model_dir: Path) -> None:
    res = runner.invoke(app, ["bench", "run", "--model", str(tiny_model_dir), "--out", str(tmp_path),
                              "--mode", "guess"])
    assert res.exit_code == 2 and "unknown mode 'guess'" in res.output
    res = runner.invoke(app, ["bench", "run", "--model", str(tiny_model_dir), "--out", str(tmp_path),
                              "--backend", "tgi", "--no-progress"])
    assert res.exit_code == 2 and "unknown backend 'tgi'" in res.output


def test_validate_demo() -> None:
    res = runner.invoke(app, ["bench", "validate", "demo"])
    assert res.exit_code == 0
    assert "test: 60 items" in res.output and "train: 60 items" in res.output
    assert "multi-answer" in res.output


def test_model_tiny_and_demo_table(tmp_path: Path) -> None:
    res = runner.invoke(app, ["model", "tiny", "--out", str(tmp_path / "m"), "--vocab-size", "600"])
    assert res.exit_code == 0 and (tmp_path / "m" / "model.safetensors").is_file()
    res = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--no-real-model"])
    assert res.exit_code == 0, res.output
    for name in ("English", "Chinese", "Japanese", "French", "Russian", "Spanish", "Average (macro)"):
        assert name in res.output
    assert (tmp_path / "demo" / "report" / "report.md").is_file()  # the demo-cpu experiment, with the tiny model
    assert "chat with the fine-tuned model: mmed serve" in res.output


def _bench_file(root: Path, split: str, lang: str, ids: list[str]) -> None:
    path = root / split / f"{lang}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    rec = {"question": "Which vitamin prevents scurvy?", "options": {"A": "C", "B": "D"}, "answer_idx": "A"}
    path.write_text("".join(json.dumps({**rec, "id": i}) + "\n" for i in ids), encoding="utf-8")


def test_validate_lists_why_when_every_record_of_a_split_is_bad(tmp_path: Path) -> None:
    (tmp_path / "Test").mkdir()
    (tmp_path / "Test" / "Spanish.jsonl").write_text(
        '{"question": "¿Cuál?", "options": {"A": "uno", "B": null}, "answer_idx": "A"}\n'
        '{"question": "x", "options": {"A": "a", "B": "b"}, "answer_idx": "C"}\n', encoding="utf-8")
    res = runner.invoke(app, ["bench", "validate", str(tmp_path), "--langs", "es"])
    assert res.exit_code == 1
    text = " ".join(res.output.split())
    assert "Spanish.jsonl:1: option B must be text" in text
    assert "Spanish.jsonl:2: answer C is not among the options A,B" in text


def test_validate_fails_on_a_missing_or_empty_split_an_empty_file_or_repeated_ids(tmp_path: Path) -> None:
    _bench_file(tmp_path, "Test", "English", ["q1", "q2"])
    res = runner.invoke(app, ["bench", "validate", str(tmp_path)])
    assert res.exit_code == 1 and "no Train/ folder" in res.output  # a whole split missing
    _bench_file(tmp_path, "Train", "English", [])
    res = runner.invoke(app, ["bench", "validate", str(tmp_path)])
    assert res.exit_code == 1 and "no items loaded" in res.output  # a split without items
    _bench_file(tmp_path, "Train", "English", ["t1"])
    _bench_file(tmp_path, "Train", "French", [])
    res = runner.invoke(app, ["bench", "validate", str(tmp_path)])
    assert res.exit_code == 1 and "fr: no items" in res.output  # one language's file empty
    _bench_file(tmp_path, "Train", "French", ["f1"])
    assert runner.invoke(app, ["bench", "validate", str(tmp_path)]).exit_code == 0
    _bench_file(tmp_path, "Test", "English", ["q1", "q2", "q1"])
    res = runner.invoke(app, ["bench", "validate", str(tmp_path)])
    assert res.exit_code == 1 and "English.jsonl:3: duplicate item id 'q1'" in res.output
    assert "test: 2 items" in res.output  # every other record still counted
