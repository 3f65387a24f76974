"""The MedQA (USMLE, MCMLE) and IgakuQA importers, on the real files and on small bad files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from mmedkit.bench.items import DataError
from mmedkit.bench.loader import load_benchmark
from mmedkit.bench.sources import SourceResult, import_source
from mmedkit.bench.sources.igakuqa import split_igakuqa
from mmedkit.bench.sources.medqa import split_of
from mmedkit.bench.sources.packed import parse_packed_options

USMLE = "benchmarks/medqa_usmle_4options/data/medqa/test.jsonl"
MCMLE = "benchmarks/medqa_mcmle_4options/metadata/test/zh/medqa-mcmle.jsonl"
IGAKUQA = "benchmarks/igakuqa/data"


def write_jsonl(path: Path, records: list[object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n"
                            for r in records), encoding="utf-8")
    return path


def usmle_record(i: int, answer: str = "B") -> dict[str, object]:
    return {"question": f"Question {i}?", "answer": "two", "options": {"A": "one", "B": "two", "C": "three"},
            "meta_info": "step1", "answer_idx": answer}


# --- MedQA on the real files ------------------------------------------------------------------


@pytest.fixture(scope="module")
def usmle(shared_data: Path) -> SourceResult:
    return import_source("medqa-usmle", shared_data / USMLE)


@pytest.fixture(scope="module")
def mcmle(shared_data: Path) -> SourceResult:
    return import_source("medqa-mcmle", shared_data / MCMLE)


def test_medqa_usmle_real_test_split(usmle: SourceResult) -> None:
    items = usmle.items
    assert len(items) == 1273 and {it.split for it in items} == {"test"} and not usmle.dropped
    assert Counter(it.subject for it in items) == {"step1": 679, "step2&3": 594}
    assert all(len(it.options) == 4 and len(it.answer) == 1 and not it.multi_answer for it in items)
    first = items[0]
    assert first.id == "medqa-usmle-0" and first.language == "en"
    assert first.question.startswith("A junior orthopaedic surgery resident is completing a carpal tunnel repair")
    assert first.options == {"A": "Disclose the error to the patient and put it in the operative report",
                             "B": "Tell the attending that he cannot fail to disclose this mistake",
                             "C": "Report the physician to the ethics committee",
                             "D": "Refuse to dictate the operative report"}
    assert first.answer == {"B"}


def test_medqa_usmle_folder_input(shared_data: Path) -> None:
    result = import_source("medqa-usmle", (shared_data / USMLE).parent)
    assert len(result.items) == 1273 and {it.split for it in result.items} == {"test"}


def test_medqa_mcmle_real_test_split(mcmle: SourceResult) -> None:
    items = mcmle.items
    assert len(items) == 3426 and {it.split for it in items} == {"test"}
    assert all(list(it.options) == ["A", "B", "C", "D"] and len(it.answer) == 1 for it in items)
    first = items[0]
    assert first.id == "medqa-mcmle-1" and first.language == "zh"
    assert first.question.startswith("经调查证实出现医院感染流行时")
    assert first.options == {"A": "2小时", "B": "4小时内", "C": "12小时内", "D": "24小时内"}
    assert first.answer == {"D"}
    # the re-packing appended one "." to every option; only that one is removed
    assert sum(v.endswith(".") for it in items for v in it.options.values()) == 1
    assert Counter(next(iter(it.answer)) for it in items) == {"A": 779, "B": 926, "C": 902, "D": 819}


def test_medqa_mcmle_keeps_period_on_request(shared_data: Path) -> None:
    result = import_source("medqa-mcmle", shared_data / MCMLE, strip_period=False)
    assert result.items[0].options["A"] == "2小时."


@pytest.mark.parametrize(("name", "lang", "rel", "n"), [("medqa-usmle", "en", USMLE, 1273),
                                                         ("medqa-mcmle", "zh", MCMLE, 3426)])
def test_medqa_import_writes_mmedbench_layout(shared_data: Path, tmp_path: Path, name: str, lang: str, rel: str,
                                              n: int) -> None:
    import_source(name, shared_data / rel, tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.jsonl")) == [
        f"Test/{'English' if lang == 'en' else 'Chinese'}.jsonl"]
    items = load_benchmark(tmp_path / "out", langs=lang)
    assert len(items) == n and items[0].id == f"{name}-{0 if lang == 'en' else 1}"


# --- MedQA on small files ----------------------------------------------------------------------


def test_medqa_folder_splits_and_dev(tmp_path: Path) -> None:
    for split, n in (("train", 3), ("dev", 2), ("test", 1)):
        write_jsonl(tmp_path / f"phrases_no_exclude_{split}.jsonl", [usmle_record(i) for i in range(n)])
    write_jsonl(tmp_path / "notes.jsonl", [usmle_record(0)])
    result = import_source("medqa-usmle", tmp_path)
    assert Counter(it.split for it in result.items) == {"train": 3, "test": 1}
    assert result.dropped == {"dev split (include_dev=False)": 2}
    assert any("notes.jsonl" in n for n in result.notes)
    assert result.items[0].id == "medqa-usmle-phrases_no_exclude_test-1"
    with_dev = import_source("medqa-usmle", tmp_path, include_dev=True)
    assert Counter(it.split for it in with_dev.items) == {"train": 5, "test": 1}


def test_medqa_single_file_split(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "usmle.jsonl", [usmle_record(0)])
    assert import_source("medqa-usmle", path).items[0].split == "test"
    assert import_source("medqa-usmle", path, split="train").items[0].split == "train"
    assert split_of(Path("phrases_no_exclude_dev.jsonl")) == "dev" and split_of(Path("x.jsonl")) is None
    dev = write_jsonl(tmp_path / "dev.jsonl", [usmle_record(0)])
    with pytest.raises(DataError, match="include_dev"):
        import_source("medqa-usmle", dev)


def test_medqa_mcmle_accepts_original_records(tmp_path: Path) -> None:
    rec = {"question": "问题", "options": {"A": "甲", "B": "乙", "C": "丙", "D": "丁", "E": "戊"},
           "answer": "丙", "meta_info": "卫生法规", "answer_idx": "C"}
    item = import_source("medqa-mcmle", write_jsonl(tmp_path / "test.jsonl", [rec])).items[0]
    assert item.options["E"] == "戊" and item.answer == {"C"} and item.subject == "卫生法规"
    assert item.id == "medqa-mcmle-test-1"


def test_option_block_spanning_lines() -> None:
    options = parse_packed_options("(A) first line\ncontinued.\n(B) two.\n(C) 3.5.", path="f", line=1,
                                   strip_period=True)
    assert options == {"A": "first line\ncontinued", "B": "two", "C": "3.5"}
    with pytest.raises(DataError, match=r"option \(C\) where \(B\) was expected"):
        parse_packed_options("(A) a.\n(C) c.", path="f", line=1)


@pytest.mark.parametrize(("records", "line", "field", "message"), [
    ([usmle_record(0), '{"question": "broken"'], 2, None, "malformed JSON"),
    ([usmle_record(0), usmle_record(1, answer="E")], 2, "answer_idx", "answer E is not among the options A,B,C"),
    ([{"question": "q", "option": "(A) x.\n(B) y.\n(C) z.\n(D) w.", "anwer": "(E)"}], 1, "anwer",
     "answer (E) is not among the options A,B,C,D"),
    ([usmle_record(0), usmle_record(1), {k: v for k, v in usmle_record(2).items() if k != "question"}], 3,
     "question", "missing field"),
])
def test_medqa_rejects_malformed_records(tmp_path: Path, records: list[object], line: int, field: str | None,
                                         message: str) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", records)
    with pytest.raises(DataError) as err:
        import_source("medqa-mcmle", path)
    text = str(err.value)
    assert str(path) in text and f":{line}:" in text and message in text
    if field:
        assert repr(field) in text and err.value.field == field and err.value.line == line


# --- IgakuQA -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def igakuqa(shared_data: Path) -> SourceResult:
    return import_source("igakuqa", shared_data / IGAKUQA)


@pytest.fixture(scope="module")
def igakuqa_all(shared_data: Path) -> SourceResult:
    return import_source("igakuqa", shared_data / IGAKUQA, keep_images=True)


def test_igakuqa_counts(igakuqa: SourceResult) -> None:
    assert igakuqa.notes[0] == "2000 questions read, 1471 text-only (text_only true), 1452 kept"
    assert len(igakuqa.items) == 1452 and {it.split for it in igakuqa.items} == {"test"}
    assert igakuqa.dropped == {
        "needs an image": 523,
        "numeric-entry question (no choices)": 12,
        "excluded from scoring by the exam board (points 0)": 11,
        "several alternative answers accepted (e.g. 'a or d')": 1,
        "blank option text": 1,
    }
    assert Counter(it.meta["year"] for it in igakuqa.items) == {2018: 284, 2019: 291, 2020: 282, 2021: 299,
                                                                2022: 296}
    assert all(it.meta["text_only"] for it in igakuqa.items)


def test_igakuqa_first_item_and_subject(igakuqa: SourceResult) -> None:
    first = igakuqa.items[0]
    assert first.id == "igakuqa-112A1" and first.language == "ja" and first.subject == "小児科"
    assert first.question == "高アンモニア血症をきたす疾患はどれか。"
    assert first.options == {"A": "Gaucher病", "B": "von Gierke病", "C": "Hurler症候群", "D": "メープルシロップ尿症",
                             "E": "オルニチントランスカルバミラーゼ欠損症"}
    assert first.answer == {"E"} and not first.multi_answer


def test_igakuqa_multi_answer_preserved(igakuqa: SourceResult) -> None:
    by_id = {it.id: it for it in igakuqa.items}
    three = by_id["igakuqa-114D72"]
    assert three.answer == {"A", "C", "D"} and three.multi_answer and "3つ選べ" in three.question
    assert Counter(len(it.answer) for it in igakuqa.items) == {1: 1229, 2: 180, 3: 43}
    assert all(it.multi_answer == (len(it.answer) > 1) for it in igakuqa.items)
    eight = by_id["igakuqa-113F83"]  # 8 choices, the table is in the question
    assert list(eight.options) == list("ABCDEFGH") and eight.answer == {"G"}


def test_igakuqa_images_excluded_by_default_and_kept_with_flag(igakuqa: SourceResult,
                                                                igakuqa_all: SourceResult) -> None:
    assert "igakuqa-112A16" not in {it.id for it in igakuqa.items}  # text_only false
    ids = {it.id for it in igakuqa_all.items}
    assert len(igakuqa_all.items) == 1975 and "needs an image" not in igakuqa_all.dropped
    assert "igakuqa-112A16" in ids and "igakuqa-112A67" in ids
    assert not ids & {"igakuqa-112C66", "igakuqa-112B30", "igakuqa-114C11", "igakuqa-112A43"}


def test_igakuqa_import_writes_mmedbench_layout(shared_data: Path, tmp_path: Path) -> None:
    import_source("igakuqa", shared_data / IGAKUQA, tmp_path / "out")
    items = load_benchmark(tmp_path / "out", langs="ja")
    assert len(items) == 1452
    assert {it.id: it.answer for it in items}["igakuqa-114D72"] == {"A", "C", "D"}


def test_split_igakuqa(igakuqa: SourceResult) -> None:
    items = igakuqa.items
    split = split_igakuqa(items, n_test=199, seed=7)
    test = {it.id for it in split if it.split == "test"}
    train = {it.id for it in split if it.split == "train"}
    assert len(test) == 199 and len(train) == len(items) - 199 and not test & train
    assert [it.id for it in split] == [it.id for it in items]
    assert {it.id for it in split_igakuqa(items, n_test=199, seed=7) if it.split == "test"} == test
    assert {it.id for it in split_igakuqa(list(reversed(items)), n_test=199, seed=7) if it.split == "test"} == test
    assert {it.id for it in split_igakuqa(items, n_test=199, seed=8) if it.split == "test"} != test
    per_year = Counter(it.meta["year"] for it in split if it.split == "test")
    assert sum(per_year.values()) == 199 and max(per_year.values()) - min(per_year.values()) <= 3
    assert {it.split for it in items} == {"test"}  # the input is not changed
    with pytest.raises(DataError, match="n_test"):
        split_igakuqa(items, n_test=len(items) + 1)


def igaku_record(**changes: object) -> dict[str, object]:
    rec: dict[str, object] = {"problem_id": "112A1", "problem_text": "どれか。", "choices": ["a1", "b1", "c1"],
                              "text_only": True, "answer": ["b"], "points": "1"}
    rec.update(changes)
    return rec


def igaku_folder(tmp_path: Path, records: list[object]) -> Path:
    data = tmp_path / "data"
    write_jsonl(data / "2018" / "112-A.jsonl", records)
    ids = [r["problem_id"] for r in records if isinstance(r, dict)]
    write_jsonl(data / "2018" / "112-A_metadata.jsonl",
                [{"problem_id": pid, "category": "内科", "kinki": [], "human_accuracy": "50"} for pid in ids])
    write_jsonl(data / "2018" / "112-A_translate.jsonl", [{"problem_id": "112A1", "answer": ["zz"]}])
    return data


def test_igakuqa_small_folder_drops_with_reasons(tmp_path: Path) -> None:
    data = igaku_folder(tmp_path, [
        igaku_record(),
        igaku_record(problem_id="112A2", answer=[]),
        igaku_record(problem_id="112A3", choices=[], answer=["12"]),
        igaku_record(problem_id="112A4", answer=["1.5"]),
        igaku_record(problem_id="112A5", text_only=False, answer=["a", "c"], problem_text="2つ選べ。"),
    ])
    result = import_source("igakuqa", data)
    assert [it.id for it in result.items] == ["igakuqa-112A1"] and result.items[0].subject == "内科"
    assert result.dropped == {"no answer given": 1, "numeric-entry question (no choices)": 1,
                              "answer is not an option letter": 1, "needs an image": 1}
    kept = import_source("igakuqa", data, keep_images=True).items[-1]
    assert kept.answer == {"A", "C"} and kept.multi_answer


@pytest.mark.parametrize(("record", "field", "message"), [
    ('{"problem_id": "112A2", ', None, "malformed JSON"),
    (igaku_record(problem_id="112A2", answer=["e"]), "answer", "answer E is not among the options A,B,C"),
    ({k: v for k, v in igaku_record(problem_id="112A2").items() if k != "problem_text"}, "problem_text",
     "missing field"),
])
def test_igakuqa_rejects_malformed_records(tmp_path: Path, record: object, field: str | None,
                                           message: str) -> None:
    data = igaku_folder(tmp_path, [igaku_record(), record])
    path = data / "2018" / "112-A.jsonl"
    with pytest.raises(DataError) as err:
        import_source("igakuqa", data)
    text = str(err.value)
    assert f"{path}:2:" in text and message in text
    if field:
        assert repr(field) in text


def test_igakuqa_needs_metadata(tmp_path: Path) -> None:
    data = igaku_folder(tmp_path, [igaku_record()])
    (data / "2018" / "112-A_metadata.jsonl").unlink()
    with pytest.raises(DataError, match="112-A_metadata.jsonl"):
        import_source("igakuqa", data)
