"""Importers of the English medical benchmarks: PubMedQA and MMLU on the real files, MedMCQA on written records."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from mmedkit.bench.items import DataError
from mmedkit.bench.loader import load_benchmark
from mmedkit.bench.sources import get_source, import_source
from mmedkit.bench.sources.mmlu import read_csv
from mmedkit.bench.sources.packed import parse_packed_options

PUBMEDQA = "benchmarks/pubmedqa/data"
MMLU_FINAL = "benchmarks/mmlu_medical/final_release_mirror/data/mmlu"
MMLU_ORIG = "benchmarks/mmlu_medical/hendrycks_test_git_785eba5/data"
FINAL_TEST = {"clinical_knowledge": 265, "medical_genetics": 100, "anatomy": 135, "professional_medicine": 272,
              "college_biology": 144, "college_medicine": 173}
ORIG_TEST = {**FINAL_TEST, "professional_medicine": 282}  # pre-release content: 10 more PM rows


def _split_counts(items: list[Any]) -> dict[str, int]:
    return dict(Counter(it.split for it in items))


# --- PubMedQA ----------------------------------------------------------------------------------------------


def test_pubmedqa_real_split_and_known_item(shared_data: Path) -> None:
    res = import_source("pubmedqa", shared_data / PUBMEDQA)
    assert _split_counts(res.items) == {"test": 500, "train": 500}
    assert len({it.id for it in res.items}) == 1000 and not res.dropped
    test = [it for it in res.items if it.split == "test"]
    assert Counter(it.options[next(iter(it.answer))] for it in test) == {"yes": 276, "no": 169, "maybe": 55}
    it = next(x for x in res.items if x.id == "pubmedqa-21645374")
    assert it.split == "test" and it.language == "en"
    assert it.options == {"A": "yes", "B": "no", "C": "maybe"} and it.answer == {"A"}
    assert it.question.startswith("Context:\nBACKGROUND: Programmed cell death (PCD) is the regulated death")
    assert "\nRESULTS: The following paper elucidates" in it.question
    assert it.question.endswith("\n\nQuestion: Do mitochondria play a role in remodelling lace plant leaves "
                                "during programmed cell death?")
    assert it.rationale and it.rationale.startswith("Results depicted mitochondrial dynamics in vivo")
    assert it.meta["year"] == "2011" and "Mitochondria" in it.meta["meshes"]


def _pqal(tmp_path: Path, records: dict[str, Any], truth: dict[str, str]) -> Path:
    folder = tmp_path / "data"
    folder.mkdir(parents=True)
    (folder / "ori_pqal.json").write_text(json.dumps(records, indent=4), encoding="utf-8")
    (folder / "test_ground_truth.json").write_text(json.dumps(truth, indent=4), encoding="utf-8")
    return folder


def _pq_record(decision: str) -> dict[str, Any]:
    return {"QUESTION": "Does early ambulation shorten hospital stay after hip surgery?",
            "CONTEXTS": ["Prolonged bed rest is common after hip surgery.", "We compared 80 patients."],
            "LABELS": ["BACKGROUND", "METHODS"], "MESHES": ["Hip"], "YEAR": "2009",
            "final_decision": decision, "LONG_ANSWER": "Early ambulation shortened the stay."}


def test_pubmedqa_test_label_must_agree(tmp_path: Path) -> None:
    folder = _pqal(tmp_path, {"111": _pq_record("yes"), "222": _pq_record("no")}, {"111": "yes", "222": "maybe"})
    with pytest.raises(DataError, match=r"test_ground_truth\.json:3: PMID 222: test label 'maybe' disagrees"):
        import_source("pubmedqa", folder)
    res = import_source("pubmedqa", _pqal(tmp_path / "ok", {"111": _pq_record("yes"), "222": _pq_record("no")},
                                          {"222": "no"}), context=False)
    assert {it.id: it.split for it in res.items} == {"pubmedqa-111": "train", "pubmedqa-222": "test"}
    assert res.items[0].question == "Does early ambulation shorten hospital stay after hip surgery?"


def test_pubmedqa_missing_field_names_file_line_and_field(tmp_path: Path) -> None:
    bad = _pq_record("yes")
    del bad["final_decision"]
    folder = _pqal(tmp_path, {"111": _pq_record("no"), "222": bad}, {"111": "no"})
    with pytest.raises(DataError) as exc:
        import_source("pubmedqa", folder)
    msg = str(exc.value)
    assert str(folder / "ori_pqal.json") in msg and "PMID 222" in msg and "(field 'final_decision')" in msg
    assert exc.value.line == 19  # the line of the "222": { key in the indented file


# --- MMLU --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("folder", "expected", "form"), [
    (MMLU_FINAL, FINAL_TEST, "header, index answers (12 files)"),
    (MMLU_ORIG, ORIG_TEST, "headerless, letter answers (18 files)"),
])
def test_mmlu_real_counts_per_subject(shared_data: Path, folder: str, expected: dict[str, int], form: str) -> None:
    res = import_source("mmlu", shared_data / folder)
    test = Counter(it.subject for it in res.items if it.split == "test")
    assert dict(test) == expected
    assert sum(test.values()) == (1089 if folder == MMLU_FINAL else 1099)
    assert Counter(it.subject for it in res.items if it.split == "train") == dict.fromkeys(expected, 5)
    assert res.notes[0] == f"forms: {form}"
    assert res.dropped == ({} if folder == MMLU_FINAL else {next(iter(res.dropped)): 123})  # val files


def test_mmlu_known_item_and_detection(shared_data: Path) -> None:
    final = shared_data / MMLU_FINAL / "test" / "anatomy_test.csv"
    orig = shared_data / MMLU_ORIG / "test" / "anatomy_test.csv"
    a, form_a = read_csv(final, subject="anatomy", split="test", target="test")
    b, form_b = read_csv(orig, subject="anatomy", split="test", target="test")
    assert (form_a, form_b) == ("header, index answers", "headerless, letter answers")
    assert len(a) == len(b) == 135
    first = a[0]
    assert first.id == "mmlu-anatomy-test-1" and first.subject == "anatomy" and first.answer == {"A"}
    assert first.question.startswith("A lesion causing compression of the facial nerve at the stylomastoid")
    assert first.options["A"] == "paralysis of the facial muscles."
    assert [(x.question, x.options, x.answer) for x in a] == [(x.question, x.options, x.answer) for x in b]
    # quoted multi-line fields are one record
    cm, _ = read_csv(shared_data / MMLU_FINAL / "test" / "college_medicine_test.csv", subject="college_medicine",
                     split="test", target="test")
    assert len(cm) == 173 and sum("\n" in x.question for x in cm) >= 10


def test_mmlu_options_subjects_and_val(shared_data: Path) -> None:
    res = import_source("mmlu", shared_data / MMLU_ORIG, subjects="CK,anatomy", val_split="train")
    assert Counter((it.subject, it.split) for it in res.items) == {
        ("clinical_knowledge", "test"): 265, ("anatomy", "test"): 135,
        ("clinical_knowledge", "train"): 5 + 29, ("anatomy", "train"): 5 + 14}
    assert "mmlu-anatomy-val-14" in {it.id for it in res.items}
    with pytest.raises(DataError, match="unknown subject 'astronomy'"):
        import_source("mmlu", shared_data / MMLU_ORIG, subjects=["astronomy"])


def _csv(tmp_path: Path, text: str, name: str = "anatomy_test.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "line", "pattern"), [
    ('Q1,a,b,c,d,A\n"Q2\nwith two lines",a,b,c,d,B\nQ3,a,b,c,C\n', 4, r"row 3: expected 6 columns .* got 5$"),
    ("question,choice0,choice1,choice2,choice3,answer\nQ1,a,b,c,d,0\nQ2,a,b,c,d,7\n", 3,
     r"row 2: answer index 7 out of range 0-3 \(field 'answer'\)"),
    ("Q1,a,b,c,d,A\n,a,b,c,d,B\n", 2, r"row 2: empty value \(field 'question'\)"),
    ("question,choice0,choice1,choice2,choice3,answer\nQ1,a,,c,d,2\n", 2, r"row 1: empty value \(field 'choice1'\)"),
    ("Q1,a,b,c,d,A\nQ2,a,b,c,d,2\n", 2, r"answer '2' is an index, but this file gives answers as letters"),
    ("Q1,a,b,c,d,E\n", 1, r"expected an answer letter A-D or an index 0-3, got 'E'"),
])
def test_mmlu_malformed_rows(tmp_path: Path, text: str, line: int, pattern: str) -> None:
    path = _csv(tmp_path, text)
    with pytest.raises(DataError, match=pattern) as exc:
        import_source("mmlu", path)
    assert str(exc.value).startswith(f"{path}:{line}: ") and exc.value.line == line


def test_mmlu_single_file_and_bad_names(tmp_path: Path) -> None:
    res = import_source("mmlu", _csv(tmp_path, '"Which bone, of these?",a,b,c,d,b\n', "anatomy_dev.csv"))
    assert [(it.id, it.split, it.answer) for it in res.items] == [("mmlu-anatomy-dev-1", "train", {"B"})]
    assert res.items[0].question == "Which bone, of these?"
    with pytest.raises(DataError, match="expected a file named"):
        import_source("mmlu", _csv(tmp_path, "Q,a,b,c,d,A\n", "anatomy.csv"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no dev/, val/ or test/ folder"):
        import_source("mmlu", tmp_path / "empty")


# --- MedMCQA (records written here, in the release's JSON-lines form) ---------------------------------------


def _mc(rid: str, cop: int | None, **extra: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "question": f"Which nerve supplies the lateral rectus muscle? ({rid})",
        "exp": "The abducens nerve (CN VI) supplies the lateral rectus; CN III supplies the other recti.",
        "cop": cop, "opa": "Oculomotor nerve", "opb": "Trochlear nerve", "opc": "Abducens nerve",
        "opd": "Ophthalmic nerve", "subject_name": "Anatomy", "topic_name": "Head and neck", "id": rid,
        "choice_type": "single"}
    if cop is None:
        del rec["cop"]
    rec.update(extra)
    return rec


def _jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_medmcqa_one_based_release(tmp_path: Path) -> None:
    _jsonl(tmp_path / "train.json", [_mc("t1", 3), _mc("t2", 4), _mc("t3", 1, choice_type="multi", exp=None)])
    _jsonl(tmp_path / "dev.json", [_mc("d1", 3), _mc("d2", 2)])
    _jsonl(tmp_path / "test.json", [_mc("x1", None, exp=""), _mc("x2", -1)])
    res = import_source("medmcqa", tmp_path)
    got = {it.id: (it.split, "".join(it.answer)) for it in res.items}
    assert got == {"medmcqa-t1": ("train", "C"), "medmcqa-t2": ("train", "D"), "medmcqa-t3": ("train", "A"),
                   "medmcqa-d1": ("test", "C"), "medmcqa-d2": ("test", "B")}
    assert res.dropped == {"no answer (official test set)": 2}
    assert res.notes == ["dev.json: only cop values 1-3 seen, so the base is ambiguous; assumed 1-based like the "
                         "official release"]  # train.json has a 4: no note
    it = res.items[0]
    assert it.options == {"A": "Oculomotor nerve", "B": "Trochlear nerve", "C": "Abducens nerve",
                          "D": "Ophthalmic nerve"}
    assert it.rationale and it.rationale.startswith("The abducens nerve (CN VI)")
    assert it.subject == "Anatomy" and it.meta["topic"] == "Head and neck" and not it.multi_answer
    assert res.items[2].rationale is None and res.items[2].meta["choice_type"] == "multi"


def test_medmcqa_zero_based_ambiguous_and_conflicting(tmp_path: Path) -> None:
    zero = import_source("medmcqa", _jsonl(tmp_path / "a" / "dev.json", [_mc("a", 2), _mc("b", 0)]))
    assert ["".join(it.answer) for it in zero.items] == ["C", "A"]
    assert zero.notes == ["dev.json: cop is 0-based (cop 0 at line 2)"]
    amb = import_source("medmcqa", _jsonl(tmp_path / "b" / "dev.json", [_mc("a", 2), _mc("b", 3)]))
    assert ["".join(it.answer) for it in amb.items] == ["B", "C"]
    assert "assumed 1-based" in amb.notes[0]
    path = _jsonl(tmp_path / "c" / "train.json", [_mc("a", 4), _mc("b", 1), _mc("c", 0)])
    with pytest.raises(DataError, match=r"cop 0 \(line 3\) and cop 4 \(line 1\) both appear") as exc:
        import_source("medmcqa", path)
    assert str(path) in str(exc.value) and exc.value.field == "cop"
    with pytest.raises(DataError, match=r"train\.json:2: expected the correct option as 1-4"):
        import_source("medmcqa", _jsonl(tmp_path / "d" / "train.json", [_mc("a", 1), _mc("b", 5)]))
    bad = _mc("b", 1)
    del bad["opc"]
    with pytest.raises(DataError, match=r"train\.json:2: missing field .*\(field 'opc'\)"):
        import_source("medmcqa", _jsonl(tmp_path / "e" / "train.json", [_mc("a", 1), bad]))


def test_medmcqa_repacked_form(tmp_path: Path) -> None:
    recs = [{"question": "Drug of choice for absence seizures in children?",
             "option": "(A) Phenytoin.\n(B) Ethosuximide.\n(C) Carbamazepine.\n(D) Phenobarbitone.",
             "anwer": "(B)", "source": "medmcqa"},
            {"question": "Most common site of carcinoid tumour?",
             "option": "(A) Appendix\n(B) Ileum, in\nolder series\n(C) Rectum\n(D) Stomach", "anwer": "(A)"}]
    path = _jsonl(tmp_path / "metadata" / "test" / "en" / "medmcqa.jsonl", recs)
    res = import_source("medmcqa", path)
    assert [(it.id, it.split, "".join(it.answer)) for it in res.items] == [
        ("medmcqa-test-1", "test", "B"), ("medmcqa-test-2", "test", "A")]
    assert res.items[0].options["B"] == "Ethosuximide" and res.items[1].options["B"] == "Ileum, in\nolder series"
    kept = import_source("medmcqa", path, strip_period=False)
    assert kept.items[0].options["B"] == "Ethosuximide." and kept.items[1].options["A"] == "Appendix"
    assert res.items[0].meta["source"] == "medmcqa"
    recs[1]["anwer"] = "(E)"
    with pytest.raises(DataError, match=r"medmcqa\.jsonl:2: answer \(E\) is not among the options A,B,C,D"):
        import_source("medmcqa", _jsonl(path, recs))
    with pytest.raises(DataError, match=r"x\.jsonl: medmcqa: cannot tell the split"):
        import_source("medmcqa", _jsonl(tmp_path / "x.jsonl", recs[:1]))
    assert len(import_source("medmcqa", tmp_path / "x.jsonl", split="train").items) == 1


def test_parse_packed_options_errors() -> None:
    assert parse_packed_options("(A) x\n(B) y", path="f", line=1) == {"A": "x", "B": "y"}
    assert parse_packed_options("(A) 2 h.\n(B) 4 h", path="f", line=1, strip_period=True) == {"A": "2 h", "B": "4 h"}
    with pytest.raises(DataError, match=r"f:3: option \(C\) where \(B\) was expected \(field 'option'\)"):
        parse_packed_options("(A) x\n(C) y", path="f", line=3)
    with pytest.raises(DataError, match="text before the first"):
        parse_packed_options("Options:\n(A) x", path="f", line=3)
    with pytest.raises(DataError, match=r"empty option text for \(B\)"):
        parse_packed_options("(A) x\n(B) ", path="f", line=3)


# --- import_source -> MMedBench layout -> load_benchmark ------------------------------------------------------


def test_import_writes_mmedbench_layout(shared_data: Path, tmp_path: Path) -> None:
    for name, src, n_test, n_train in [("pubmedqa", PUBMEDQA, 500, 500), ("mmlu", MMLU_FINAL, 1089, 30)]:
        out = tmp_path / name
        import_source(name, shared_data / src, out)
        assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jsonl")) == [
            "Test/English.jsonl", "Train/English.jsonl"]
        test = load_benchmark(out, split="test", langs="en")
        assert len(test) == n_test and len(load_benchmark(out, split="train", langs="en")) == n_train
    back = next(it for it in load_benchmark(tmp_path / "pubmedqa", split="test", langs="en")
                if it.id == "pubmedqa-21645374")
    assert back.answer == {"A"} and back.question.startswith("Context:\nBACKGROUND:") and back.rationale


def test_medmcqa_import_round_trip(tmp_path: Path) -> None:
    _jsonl(tmp_path / "src" / "data" / "train.json", [_mc("t1", 1), _mc("t2", 4)])  # the release's data/ folder
    _jsonl(tmp_path / "src" / "data" / "dev.json", [_mc("d1", 3)])
    import_source("medmcqa", tmp_path / "src", tmp_path / "out")
    test = load_benchmark(tmp_path / "out", split="test", langs="en")
    assert [(it.id, it.rationale is not None, it.subject) for it in test] == [("medmcqa-d1", True, "Anatomy")]
    assert len(load_benchmark(tmp_path / "out", split="train", langs="en")) == 2
    assert get_source("medmcqa").license == "MIT" and get_source("mmlu").language == "en"
