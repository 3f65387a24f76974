"""Importers of FrenchMedMCQA, RuMedDaNet and HEAD-QA: real files (../shared/data) and malformed inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mmedkit.bench.items import DataError, Item
from mmedkit.bench.loader import load_benchmark
from mmedkit.bench.sources import SourceResult, get_source, import_source

FR = "benchmarks/frenchmedmcqa/corpus"
RU = "benchmarks/rumeddanet/data/RuMedDaNet"
ES = "benchmarks/head_qa/data/HEAD"


def _split(result: SourceResult, split: str) -> list[Item]:
    return [it for it in result.items if it.split == split]


def _counts(result: SourceResult) -> tuple[int, int]:
    return len(_split(result, "train")), len(_split(result, "test"))


@pytest.fixture(scope="module")
def fr(shared_data: Path) -> SourceResult:
    return get_source("frenchmedmcqa").run(shared_data / FR)


@pytest.fixture(scope="module")
def ru(shared_data: Path) -> SourceResult:
    return get_source("rumeddanet").run(shared_data / RU)


@pytest.fixture(scope="module")
def es_all(shared_data: Path) -> SourceResult:
    return get_source("headqa").run(shared_data / ES, keep_images=True)


# --- real files -------------------------------------------------------------------------------------------


def test_frenchmedmcqa_counts_and_first_test_item(fr: SourceResult) -> None:
    assert _counts(fr) == (2171, 622)  # MMedBench French train / test
    assert fr.dropped == {}
    first = _split(fr, "test")[0]
    assert first.id == "frenchmedmcqa-5987fa6bffd499eb439c90679d7fbca822d62bc639d1b9c94c68ae20e46f6004"
    assert first.question.startswith("Parmi les propositions suivantes, indiquer celle qui est exacte.")
    assert first.options == {"A": "Le suc gastrique", "B": "La bile vésiculaire", "C": "Le suc pancréatique",
                             "D": "La salive", "E": "Les sécrétions intestinales"}
    assert first.answer == frozenset({"C"}) and first.subject == "pharmacie" and first.language == "fr"


def test_frenchmedmcqa_answer_sets_are_preserved(fr: SourceResult) -> None:
    assert all(it.multi_answer for it in fr.items)
    test = _split(fr, "test")
    assert sum(len(it.answer) > 1 for it in test) == 301
    assert {len(it.answer) for it in test} == {1, 2, 3, 4, 5}
    hep = next(it for it in test if it.question.startswith("Les complications d'une hépatite virale aiguë"))
    assert hep.answer == frozenset({"B", "C", "D"})
    # train.json repeats one record (same id): kept, as MMedBench keeps it, under a distinct id
    ids = [it.id for it in fr.items]
    assert len(set(ids)) == len(ids) and sum(i.endswith("-dup1") for i in ids) == 1


def test_frenchmedmcqa_dev_option(shared_data: Path) -> None:
    res = import_source("frenchmedmcqa", shared_data / FR, dev="train")
    assert _counts(res) == (2171 + 312, 622)
    with pytest.raises(DataError, match="dev must be one of"):
        import_source("frenchmedmcqa", shared_data / FR, dev="validation")


def test_rumeddanet_counts_options_and_context(ru: SourceResult) -> None:
    assert _counts(ru) == (1052, 256)  # MMedBench Russian train / test
    assert ru.dropped == {"no gold answer": 512}  # private_test_v1.jsonl
    assert all(it.options == {"A": "да", "B": "нет"} and not it.multi_answer for it in ru.items)
    first = _split(ru, "test")[0]
    assert first.id == "rumeddanet-53f9b303802507807bc96f95ba2a5230"
    assert first.question.startswith("Контекст: Противокашлевое неопиоидное средство")
    assert first.question.endswith("\nВопрос: Противокашлевое действие бутамирата цитрата обусловлено главным "
                                   "образом воздействием на кашлевой центр в мозге?")
    assert first.answer == frozenset({"A"})
    test = _split(ru, "test")
    assert sum(it.answer == frozenset({"A"}) for it in test) == 128


def test_rumeddanet_without_context_and_with_dev(shared_data: Path) -> None:
    res = import_source("rumeddanet", shared_data / RU, context=False, dev="test")
    assert _counts(res) == (1052, 512)
    first = _split(res, "test")[0]
    assert first.question.startswith("Зачастую причиной апоплексии яичника")  # dev_v1.jsonl comes first
    assert first.meta["context"].startswith("Апоплексия яичника")


def test_headqa_counts_with_images_match_mmedbench(es_all: SourceResult) -> None:
    assert _counts(es_all) == (2657, 2742)  # MMedBench Spanish train / test: image questions included
    first = _split(es_all, "test")[0]
    assert first.id == "headqa-Cuaderno_2016_1_B-1"
    assert first.question == "Forma fibras extracelulares con gran resistencia a la tensión:"
    assert first.options == {"A": "Fibronectina.", "B": "Colágeno.", "C": "Integrinas.", "D": "Proteoglucanos."}
    assert first.answer == frozenset({"B"}) and first.subject == "biology"
    assert first.meta["aid_to_letter"] == {"1": "A", "2": "B", "3": "C", "4": "D"}
    assert {len(it.options) for it in _split(es_all, "train")} == {5}  # 2013-2014 exams had 5 answers
    assert {it.subject for it in es_all.items} == {"biology", "chemistry", "medicine", "nursery", "pharmacology",
                                                    "psychology"}


def test_headqa_drops_image_questions_by_default(shared_data: Path, es_all: SourceResult) -> None:
    res = import_source("headqa", shared_data / ES)
    assert _counts(res) == (2657 - 68, 2742 - 67)
    assert res.dropped == {"needs an image": 135}
    assert not any("image" in it.meta for it in res.items)
    kept = [it for it in es_all.items if "image" in it.meta]
    assert len(kept) == 135 and all(it.subject == "medicine" for it in kept)
    assert kept[0].question.startswith("Pregunta vinculada a la imagen")


@pytest.mark.parametrize(("name", "rel", "options", "expected"), [
    ("frenchmedmcqa", FR, {}, (2171, 622)),
    ("rumeddanet", RU, {}, (1052, 256)),
    ("headqa", ES, {"keep_images": True}, (2657, 2742)),
])
def test_import_writes_mmedbench_layout(shared_data: Path, tmp_path: Path, name: str, rel: str,
                                        options: dict[str, Any], expected: tuple[int, int]) -> None:
    import_source(name, shared_data / rel, tmp_path, **options)
    train = load_benchmark(tmp_path, split="train")
    test = load_benchmark(tmp_path, split="test")
    assert (len(train), len(test)) == expected
    assert len({it.id for it in train + test}) == sum(expected)
    if name == "frenchmedmcqa":
        assert all(it.multi_answer for it in test) and sum(len(it.answer) > 1 for it in test) == 301


# --- malformed input (no shared data needed) ---------------------------------------------------------------


def _fr_record(**over: Any) -> dict[str, Any]:
    rec = {"id": "x1", "question": "Q?", "answers": {k: k.upper() for k in "abcde"}, "correct_answers": ["a", "c"],
           "subject_name": "pharmacie", "nbr_correct_answers": 2}
    rec.update(over)
    return rec


def _fr_folder(root: Path, test: list[Any] | str) -> Path:
    root.mkdir()
    (root / "train.json").write_text(json.dumps([_fr_record()]), encoding="utf-8")
    (root / "test.json").write_text(test if isinstance(test, str) else json.dumps(test), encoding="utf-8")
    return root


def test_frenchmedmcqa_small_folder_ok(tmp_path: Path) -> None:
    res = import_source("frenchmedmcqa", _fr_folder(tmp_path / "c", [_fr_record(id="x2")]))
    assert [(it.split, it.answer) for it in res.items] == [("train", {"A", "C"}), ("test", {"A", "C"})]


@pytest.mark.parametrize(("test", "pattern"), [
    ('[{"id": "x2",\n "question": }]', r"test\.json:2: malformed JSON"),
    ([_fr_record(), _fr_record(correct_answers=["f"])],
     r"test\.json:record 1: answer F is not among the options A,B,C,D,E \(field 'correct_answers'\)"),
    ([_fr_record(nbr_correct_answers=3)], r"test\.json:record 0: nbr_correct_answers is 3 .* 'nbr_correct_answers'"),
    ([_fr_record(), _fr_record(), {k: v for k, v in _fr_record().items() if k != "question"}],
     r"test\.json:record 2: missing field .*'question'"),
    ({"data": []}, r"test\.json: expected a JSON array"),
])
def test_frenchmedmcqa_rejects_malformed(tmp_path: Path, test: Any, pattern: str) -> None:
    folder = _fr_folder(tmp_path / "c", test)
    with pytest.raises(DataError, match=pattern) as err:
        import_source("frenchmedmcqa", folder)
    assert str(folder / "test.json") in str(err.value)


def _ru_line(**over: Any) -> str:
    rec = {"context": "Текст.", "question": "Верно?", "answer": "да", "pairID": "p1"}
    rec.update(over)
    return json.dumps({k: v for k, v in rec.items() if v is not None}, ensure_ascii=False)


def _ru_folder(root: Path, test_lines: list[str]) -> Path:
    root.mkdir()
    (root / "train_v1.jsonl").write_text(_ru_line(pairID="t0") + "\n", encoding="utf-8")
    (root / "test_v1.jsonl").write_text("\n".join(test_lines) + "\n", encoding="utf-8")
    return root


def test_rumeddanet_drops_unlabelled_records(tmp_path: Path) -> None:
    folder = _ru_folder(tmp_path / "r", [_ru_line(), _ru_line(pairID="p2", answer="")])
    res = import_source("rumeddanet", folder)
    assert _counts(res) == (1, 1) and res.dropped == {"no gold answer": 1}


@pytest.mark.parametrize(("lines", "pattern"), [
    ([_ru_line(), '{"context": "x",'], r"test_v1\.jsonl:2: malformed JSON"),
    ([_ru_line(answer="может быть")], r"test_v1\.jsonl:1: expected 'да' or 'нет'.*\(field 'answer'\)"),
    ([_ru_line(), _ru_line(pairID="p2", context=None)], r"test_v1\.jsonl:2: missing field .*'context'"),
    ([_ru_line(), _ru_line()], r"test_v1\.jsonl:2: duplicate pairID .*'pairID'"),
])
def test_rumeddanet_rejects_malformed(tmp_path: Path, lines: list[str], pattern: str) -> None:
    folder = _ru_folder(tmp_path / "r", lines)
    with pytest.raises(DataError, match=pattern) as err:
        import_source("rumeddanet", folder)
    assert str(folder / "test_v1.jsonl") in str(err.value)


def _es_question(qid: str, **over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {"qid": qid, "qtext": f"Pregunta {qid}:", "ra": "2", "image": "",
                           "answers": [{"aid": i, "atext": f"R{i}."} for i in range(1, 5)]}
    rec.update(over)
    return {k: v for k, v in rec.items() if v is not None}


def _es_file(questions: list[dict[str, Any]], exam: str) -> str:
    return json.dumps({"version": "1.0", "language": "es", "exams": {
        exam: {"name": exam, "category": "medicine", "year": "2016", "data": questions}}})


def _es_folder(root: Path, test: list[dict[str, Any]] | str) -> Path:
    root.mkdir()
    (root / "train_HEAD.json").write_text(_es_file([_es_question("1")], "Cuaderno_2013_1_M"), encoding="utf-8")
    text = test if isinstance(test, str) else _es_file(test, "Cuaderno_2016_1_M")
    (root / "test_HEAD.json").write_text(text, encoding="utf-8")
    return root


def test_headqa_small_folder_images(tmp_path: Path) -> None:
    folder = _es_folder(tmp_path / "h", [_es_question("1"), _es_question("2", image="./img/x.png", ra=4)])
    res = import_source("headqa", folder)
    assert [it.id for it in res.items] == ["headqa-Cuaderno_2013_1_M-1", "headqa-Cuaderno_2016_1_M-1"]
    assert res.dropped == {"needs an image": 1}
    kept = import_source("headqa", folder, keep_images=True)
    assert kept.items[-1].answer == frozenset({"D"}) and kept.items[-1].meta["image"] == "./img/x.png"


@pytest.mark.parametrize(("test", "pattern"), [
    ('{"exams": {\n}}}', r"test_HEAD\.json:2: malformed JSON"),
    ([_es_question("1"), _es_question("2", ra="7")],
     r"test_HEAD\.json:exam Cuaderno_2016_1_M record 1: right answer 7 is not among the answer ids 1, 2, 3, 4 "
     r"\(field 'ra'\)"),
    ([_es_question("1", qtext=None)], r"test_HEAD\.json:exam Cuaderno_2016_1_M record 0: missing field .*'qtext'"),
    ([_es_question("1"), _es_question("1")], r"test_HEAD\.json:exam Cuaderno_2016_1_M record 1: duplicate .*'qid'"),
])
def test_headqa_rejects_malformed(tmp_path: Path, test: Any, pattern: str) -> None:
    folder = _es_folder(tmp_path / "h", test)
    with pytest.raises(DataError, match=pattern) as err:
        import_source("headqa", folder)
    assert str(folder / "test_HEAD.json") in str(err.value)


@pytest.mark.parametrize("name", ["frenchmedmcqa", "rumeddanet", "headqa"])
def test_missing_split_file_is_named(tmp_path: Path, name: str) -> None:
    with pytest.raises(DataError, match=r"missing (train\.json|train_v1\.jsonl|train_HEAD\.json)"):
        import_source(name, tmp_path)
