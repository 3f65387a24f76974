"""The MMedBench-layout loader: round trips, answer parsing, and clear errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmedkit.bench.items import DataError, parse_answer
from mmedkit.bench.loader import demo_root, load_benchmark, write_benchmark
from mmedkit.languages import LANGUAGES


def _write(root: Path, split: str, lang: str, records: list[object] | str) -> Path:
    path = root / split / f"{lang}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = records if isinstance(records, str) else "\n".join(json.dumps(r, ensure_ascii=False) for r in records)
    path.write_text(text + "\n", encoding="utf-8")
    return path


GOOD = {"question": "Which vitamin deficiency causes scurvy?", "options": {"A": "A", "B": "B1", "C": "C",
                                                                            "D": "D"},
        "answer_idx": "C", "rationale": "Vitamin C is needed for collagen synthesis.", "human_checked": 1,
        "meta_info": {"subject": "nutrition"}}


def test_demo_sample_has_every_language_and_multi_answer_french() -> None:
    for split in ("train", "test"):
        items = load_benchmark("demo", split=split)
        counts = {code: sum(it.language == code for it in items) for code in LANGUAGES}
        assert counts == {code: 10 for code in LANGUAGES}
        fr = [it for it in items if it.language == "fr"]
        assert all(it.multi_answer for it in fr)
        assert sum(len(it.answer) > 1 for it in fr) >= 6
        assert not any(it.multi_answer for it in items if it.language != "fr")
        ru = [it for it in items if it.language == "ru"]
        assert all(it.options == {"A": "да", "B": "нет"} for it in ru)


def test_demo_round_trip(tmp_path: Path) -> None:
    train = load_benchmark("demo", split="train")
    test = load_benchmark("demo", split="test")
    write_benchmark([*train, *test], tmp_path)
    again = load_benchmark(tmp_path, split="test") + load_benchmark(tmp_path, split="train")
    by_id = {it.id: it for it in again}
    assert len(by_id) == len(train) + len(test)
    for it in [*train, *test]:
        other = by_id[it.id]
        assert (other.question, other.options, other.answer, other.rationale, other.human_checked,
                other.subject, other.multi_answer, other.language, other.split) == (
            it.question, it.options, it.answer, it.rationale, it.human_checked, it.subject, it.multi_answer,
            it.language, it.split)


def test_langs_subset_and_limit() -> None:
    items = load_benchmark(demo_root(), langs="ru,zh", limit=3)
    assert [it.language for it in items] == ["zh"] * 3 + ["ru"] * 3


@pytest.mark.parametrize(("value", "expected"), [
    ("B", {"B"}), (["A", "C"], {"A", "C"}), ("A,C", {"A", "C"}), ("a, c", {"A", "C"}), ("A;D", {"A", "D"}),
    (["e"], {"E"}),
])
def test_parse_answer_forms(value: object, expected: set[str]) -> None:
    assert parse_answer(value, {k: k for k in "ABCDE"}) == frozenset(expected)


def test_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "Test", "English", json.dumps(GOOD) + "\n{not json")
    with pytest.raises(DataError) as exc:
        load_benchmark(tmp_path, langs="en")
    assert f"{path}:2" in str(exc.value) and "malformed JSON" in str(exc.value)


def test_answer_not_among_options(tmp_path: Path) -> None:
    path = _write(tmp_path, "Test", "English", [GOOD, {**GOOD, "answer_idx": "E"}])
    with pytest.raises(DataError) as exc:
        load_benchmark(tmp_path, langs="en")
    msg = str(exc.value)
    assert f"{path}:2" in msg and "answer_idx" in msg and "E is not among the options A,B,C,D" in msg


def test_empty_options(tmp_path: Path) -> None:
    _write(tmp_path, "Test", "Spanish", [{**GOOD, "options": {}}])
    with pytest.raises(DataError, match=r"Spanish.jsonl:1: empty option set \(field 'options'\)"):
        load_benchmark(tmp_path, langs="es")


def test_missing_file_and_folder(tmp_path: Path) -> None:
    _write(tmp_path, "Test", "English", [GOOD])
    with pytest.raises(DataError, match="missing file for Chinese"):
        load_benchmark(tmp_path, langs="en,zh")
    with pytest.raises(DataError, match="no Train/ folder"):
        load_benchmark(tmp_path, split="train")
    with pytest.raises(DataError, match="data folder not found"):
        load_benchmark(tmp_path / "nope")


def test_skip_invalid_keeps_good_records_and_reports(tmp_path: Path) -> None:
    from mmedkit.bench.loader import LoadReport

    _write(tmp_path, "Test", "English", "\n".join([json.dumps(GOOD), "{oops", json.dumps({**GOOD, "answer_idx": ""}),
                                                   json.dumps({**GOOD, "question": "Second?"})]))
    report = LoadReport()
    items = load_benchmark(tmp_path, langs="en", skip_invalid=True, report=report)
    assert [it.question for it in items] == [GOOD["question"], "Second?"]
    assert len(report.skipped) == 2
    assert any(":2: malformed JSON" in s for s in report.skipped)
    assert any(":3: empty answer" in s for s in report.skipped)


def test_hub_id_offline_gives_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="Henrychur/MMedBench.*Hugging Face hub"):
        load_benchmark("Henrychur/MMedBench")


def test_zip_archive_in_mmedbench_layout_is_extracted_and_found(tmp_path: Path) -> None:
    """The hub copy of MMedBench is a single MMedBench.zip; its nested layout must be found."""
    import zipfile

    from mmedkit.bench.loader import extract_zip, find_layout_root

    archive = tmp_path / "MMedBench.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for split in ("Train", "Test"):
            for lang in ("English", "French"):
                src = demo_root() / split / f"{lang}.jsonl"
                zf.write(src, f"MMedBench/{split}/{lang}.jsonl")
        zf.writestr("__MACOSX/MMedBench/._Test", "")
    root = find_layout_root(extract_zip(archive, tmp_path / "out"))
    assert root == tmp_path / "out" / "MMedBench"
    items = load_benchmark(root)
    assert {it.language for it in items} == {"en", "fr"} and len(items) == 20

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape.txt", "x")
    with pytest.raises(DataError, match="unsafe path"):
        extract_zip(evil, tmp_path / "evil")
    assert not (tmp_path / "escape.txt").exists()


def test_a_zip_bomb_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    import zipfile

    from mmedkit.bench.loader import extract_zip

    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("MMedBench/Test/English.jsonl", json.dumps(GOOD) + "\n")
        zf.writestr("MMedBench/Test/French.jsonl", b" " * (50 << 20))
    assert bomb.stat().st_size < 100_000
    with pytest.raises(DataError, match="French.jsonl.*expands past .*zip bomb"):
        extract_zip(bomb, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.zip"]  # no partial folder
    with pytest.raises(DataError, match="expands past 100 bytes"):
        extract_zip(bomb, tmp_path / "out", max_bytes=100)
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(DataError, match="unreadable archive"):
        extract_zip(tmp_path / "bad.zip", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.zip", "bomb.zip"]


@pytest.mark.parametrize(("line", "message"), [
    (b'{"question": "Q?", "options": {"A": "caf\xe9"}, "answer_idx": "A"}', ":1: not UTF-8 text: byte 0xe9 at column"),
    (b"[" * 100_000 + b"]" * 100_000, ":1: malformed JSON: nested too deeply"),
    (json.dumps({**GOOD, "options": {"A": None, "B": "x"}, "answer_idx": "B"}).encode(),
     ":1: option A must be text, got null (field 'options.A')"),
    (json.dumps({**GOOD, "options": {"A": ["x"], "B": "x"}, "answer_idx": "B"}).encode(),
     ":1: option A must be text, got [\"x\"] (field 'options.A')"),
    (b'{"question": "Q?", "options": {"A": NaN, "B": "x"}, "answer_idx": "B"}', ":1: option A must be text, got NaN"),
])
def test_bad_lines_are_errors_with_file_and_line_and_can_be_skipped(tmp_path: Path, line: bytes,
                                                                    message: str) -> None:
    from mmedkit.bench.loader import LoadReport

    path = tmp_path / "Test" / "English.jsonl"
    path.parent.mkdir()
    path.write_bytes(line + b"\n" + json.dumps(GOOD).encode() + b"\n")
    with pytest.raises(DataError) as err:
        load_benchmark(tmp_path, langs="en")
    assert str(err.value).startswith(str(path)) and message in str(err.value)
    report = LoadReport()
    assert len(load_benchmark(tmp_path, langs="en", skip_invalid=True, report=report)) == 1
    assert len(report.skipped) == 1 and message in report.skipped[0]


def test_repeated_ids_are_an_error_naming_the_line_or_skipped(tmp_path: Path) -> None:
    from mmedkit.bench.loader import LoadReport

    _write(tmp_path, "Test", "English", [{**GOOD, "id": "q1"}, {**GOOD, "id": "q2"}, {**GOOD, "id": "q1"}])
    with pytest.raises(DataError, match=r"English\.jsonl:3: duplicate item id 'q1' \(field 'id'\)"):
        load_benchmark(tmp_path, langs="en")
    report = LoadReport()
    assert [it.id for it in load_benchmark(tmp_path, langs="en", skip_invalid=True, report=report)] == ["q1", "q2"]
    assert report.skipped == [f"{tmp_path / 'Test' / 'English.jsonl'}:3: duplicate item id 'q1' (field 'id')"]
