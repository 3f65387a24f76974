"""The medical keyword matcher, the datatrove filter step built on it, and the shipped keyword lists."""

from __future__ import annotations

import pytest

pytest.importorskip("datatrove")
pytest.importorskip("ahocorasick_rs")

from datatrove.data import Document  # noqa: E402

from mmedkit.corpus.keywords import (  # noqa: E402
    DEFAULT_THRESHOLDS,
    STUDY_THRESHOLDS,
    KeywordMatcher,
    MedicalKeywordFilter,
    check_thresholds,
    matcher_for,
    read_keyword_file,
)
from mmedkit.languages import CODES, LANGUAGES  # noqa: E402


def test_word_boundaries_for_space_delimited_languages() -> None:
    m = KeywordMatcher("en", ["anemia", "heart failure", "failure", "covid-19", "flu"])
    found = [k for _, _, k in m.hits("Anemia (hypoanemias?) with heart failure; covid-19 and influenza, flu.")]
    # "hypoanemias" and "influenza" contain keywords but not as whole words
    assert found == ["anemia", "heart failure", "failure", "covid-19", "flu"]
    # the hyphen and the apostrophe end words: "post-covid-19" and "l'anemia" still match
    assert m.scan("post-covid-19")[0] == 1 and m.scan("l'anemia")[0] == 1


def test_cyrillic_case_folding_and_inflection() -> None:
    m = KeywordMatcher("ru", ["рак", "раком", "пневмония"])
    hits = [k for _, _, k in m.hits("РАК и Раком; ракета и ПНЕВМОНИЯ")]
    assert hits == ["рак", "раком", "пневмония"]  # "ракета" (rocket) is not "рак" (cancer)
    # the shipped Russian list has the cases and plurals of its lemmas, with "ё" also written "е"
    ru = matcher_for("ru")
    for form in ("пневмонией", "пневмониях", "больных", "опухолей", "лёгочной", "легочной", "госпитализирована"):
        assert ru.scan(form)[0] == 1, form


def test_chinese_and_japanese_match_substrings() -> None:
    zh = KeywordMatcher("zh", ["肺炎", "咳嗽", "ct"])
    distinct, ratio = zh.scan("患者发热咳嗽，诊断为肺炎，做CT检查。CTO不算。")
    assert distinct == 3
    assert ratio == pytest.approx(6 / 25)  # 咳嗽 + 肺炎 + CT of 25 characters; "CTO" is no "CT"
    ja = KeywordMatcher("ja", ["肺炎", "ct"])
    # full-width Latin letters, common in Japanese text, match the ASCII keyword
    assert [k for _, _, k in ja.hits("胸部ＣＴで肺炎像")] == ["ct", "肺炎"]


def test_empty_and_keywordless_text() -> None:
    m = matcher_for("en")
    assert m.scan("") == (0, 0.0)
    assert m.scan("   \n") == (0, 0.0)
    assert m.scan("The committee met on Tuesday to discuss the budget.") == (0, 0.0)


def test_overlapping_hits_count_keywords_but_characters_once() -> None:
    m = KeywordMatcher("en", ["heart failure", "failure", "heart"])
    distinct, ratio = m.scan("heart failure")
    assert distinct == 3
    assert ratio == pytest.approx(1.0)  # 13 characters covered once, not 13 + 7 + 5
    distinct, ratio = m.scan("heart failure heart")
    assert distinct == 3 and ratio == pytest.approx(18 / 19)


def test_keyword_file_errors_name_file_and_line(tmp_path) -> None:
    bad = tmp_path / "xx.txt"
    bad.write_text("# header\nfever\nx\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"xx\.txt:3: keyword 'x' is a single non-CJK character"):
        read_keyword_file(bad)
    bad.write_text("fever\n12-34\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"xx\.txt:2: keyword '12-34' has no letter"):
        read_keyword_file(bad)
    bad.write_text("# only a comment\n", encoding="utf-8")
    with pytest.raises(ValueError, match="keyword list is empty"):
        read_keyword_file(bad)


@pytest.mark.parametrize("code", CODES)
def test_shipped_lists(code: str) -> None:
    path = LANGUAGES[code].keyword_list
    assert path is not None, f"no keyword list for {code}"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("#") and "written for this project" in lines[0]
    terms = read_keyword_file(path)
    assert len(set(terms)) == len(terms), f"duplicate terms in {path.name}"
    assert len(terms) >= 500, f"{path.name} has only {len(terms)} terms"
    # terms that fire on general, biology, food, fitness and beauty text are kept out
    generic = {"health", "body", "care", "cell", "protein", "santé", "salud", "здоровье", "健康", "美容"}
    assert not generic & {t.lower() for t in terms}


def test_shipped_lists_inflected_forms() -> None:
    fr = set(read_keyword_file(LANGUAGES["fr"].keyword_list))
    assert {"médical", "médicale", "médicaux", "médicales", "hôpital", "hôpitaux"} <= fr
    es = set(read_keyword_file(LANGUAGES["es"].keyword_list))
    assert {"médico", "médica", "médicos", "médicas", "enfermedad", "enfermedades"} <= es
    ru = set(read_keyword_file(LANGUAGES["ru"].keyword_list))
    assert {"болезнь", "болезни", "болезнью", "болезней", "болезням", "болезнями", "болезнях"} <= ru


def _doc(text: str, lang: str | None = "en") -> Document:
    return Document(text=text, id="d", metadata={} if lang is None else {"language": lang})


MEDICAL_EN = ("A 54-year-old patient with type 2 diabetes and hypertension was admitted to hospital with chest "
              "pain. The ECG showed atrial fibrillation; aspirin and heparin were given, and an echocardiogram "
              "was normal.")
GENERAL_EN = "The city council approved the new budget for road repairs and a public library after a long debate."


def test_filter_step_writes_metadata_and_reasons() -> None:
    step = MedicalKeywordFilter()
    med, gen, fr, de, none = (_doc(MEDICAL_EN), _doc(GENERAL_EN), _doc("Le patient a de la fièvre.", "fr"),
                              _doc(MEDICAL_EN, "de"), _doc(MEDICAL_EN, None))
    assert step.filter(med) is True
    assert med.metadata["medical_keywords_distinct"] >= 8
    assert 0.1 < med.metadata["medical_keyword_ratio"] < 1
    assert step.filter(gen) == (False, "few medical keywords")
    assert gen.metadata["medical_keywords_distinct"] == 0 and gen.metadata["medical_keyword_ratio"] == 0.0
    assert step.filter(fr) == (False, "few medical keywords")  # 2 keywords, French needs 4
    assert step.filter(de) == (False, "unsupported language")
    assert step.filter(none) == (False, "unsupported language")
    # a long text with enough distinct keywords but too thin a share of them
    thin = _doc(MEDICAL_EN + " " + GENERAL_EN * 80)
    assert step.filter(thin) == (False, "low keyword density")


def test_filter_step_runs_as_datatrove_step(tmp_path) -> None:
    from datatrove.pipeline.writers.jsonl import JsonlWriter

    docs = [_doc(MEDICAL_EN), _doc(GENERAL_EN), _doc(MEDICAL_EN, "de"), _doc("", "en")]
    for i, d in enumerate(docs):
        d.id = str(i)
    step = MedicalKeywordFilter(exclusion_writer=JsonlWriter(str(tmp_path / "dropped"), compression=None))
    kept = list(step.run(iter(docs)))
    assert [d.id for d in kept] == ["0"]
    stats = step.stats.to_dict()["stats"]
    assert stats["total"] == 4 and stats["forwarded"] == 1 and stats["dropped"] == 3
    assert stats["dropped_few medical keywords"] == 2
    assert stats["dropped_unsupported language"] == 1
    assert stats["en_kept"] == 1 and stats["en_dropped"] == 2
    import json

    written = [json.loads(line) for f in (tmp_path / "dropped").glob("*.jsonl") for line in f.open()]
    assert sorted(w["metadata"]["filter_reason"] for w in written) == [
        "few medical keywords", "few medical keywords", "unsupported language"]


def test_thresholds_configurable_and_validated() -> None:
    strict = MedicalKeywordFilter(thresholds={"en": (50, 0.9)}, languages=["en", "French"])
    assert strict.thresholds == {"en": (50, 0.9), "fr": DEFAULT_THRESHOLDS["fr"]}
    assert strict.filter(_doc(MEDICAL_EN)) == (False, "few medical keywords")
    assert strict.filter(_doc("Le patient a de la fièvre.", "fr")) == (False, "few medical keywords")
    assert strict.filter(_doc(MEDICAL_EN, "zh")) == (False, "unsupported language")  # not in `languages`
    assert MedicalKeywordFilter(thresholds=STUDY_THRESHOLDS).thresholds == STUDY_THRESHOLDS
    with pytest.raises(ValueError, match=r"thresholds\['en'\]: ratio must be a number in \[0, 1\]"):
        check_thresholds({"en": (3, 1.5)})
    with pytest.raises(ValueError, match=r"thresholds\['ru'\]: count must be an integer >= 0"):
        check_thresholds({"ru": (-1, 0.02)})
    with pytest.raises(ValueError, match=r"expected \(count, ratio\)"):
        check_thresholds({"es": 3})
    with pytest.raises(KeyError, match="unknown language 'de'"):
        MedicalKeywordFilter(languages=["de"])


def test_filter_step_pickles_for_distributed_executors() -> None:
    import pickle

    step = MedicalKeywordFilter(thresholds={"en": [3, 0.02]})  # YAML gives lists
    matcher_for("en")  # the automaton lives in a per-process cache, not in the step
    clone = pickle.loads(pickle.dumps(step))
    assert clone.thresholds["en"] == (3, 0.02)
    assert clone.filter(_doc(MEDICAL_EN)) is True
