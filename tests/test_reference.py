"""The study's published figures: one module, consistent with the suites and filters that use them."""

from __future__ import annotations

from mmedkit import reference
from mmedkit.languages import LANGUAGES


def test_mmedbench_rows_cover_the_six_languages_and_average() -> None:
    for name, row in reference.MMEDBENCH_ACCURACY.items():
        assert set(row) == {*LANGUAGES, "avg"}, name
    assert reference.MMEDBENCH_ACCURACY["Llama 3 (8B)"]["avg"] == 62.79
    assert reference.MMEDBENCH_ACCURACY["MMed-Llama 3 (8B)"]["avg"] == 67.75
    assert set(reference.MMEDBENCH_COUNTS) == set(LANGUAGES) == set(reference.STUDY_KEYWORD_THRESHOLDS)


def test_english_table_matches_the_english_suite() -> None:
    from mmedkit.bench.suites import MMLU_SUBJECTS, SUITES

    assert reference.ENGLISH_TASKS == ("MedQA", "MedMCQA", "PubMedQA", *MMLU_SUBJECTS)
    assert {s.task for s in SUITES["english-medical"].sources} == set(reference.ENGLISH_TASKS)
    for name, row in reference.ENGLISH_ACCURACY.items():
        assert list(row) == [*reference.ENGLISH_TASKS, "Avg."], name


def test_llama3_row_is_complete_and_its_average_is_the_mean() -> None:
    row = reference.MMEDBENCH_ACCURACY["Llama 3 (8B)"]
    assert [row[c] for c in ("en", "zh", "ja", "fr", "ru", "es")] == [63.86, 78.23, 48.24, 50.80, 71.48, 64.15]
    assert "Llama 3 (8B)" not in reference.average_discrepancies()


def test_gpt4_average_discrepancy_is_flagged_and_every_row_has_a_source() -> None:
    assert reference.average_discrepancies() == {"GPT-4": (74.27, 75.31)}
    assert set(reference.MMEDBENCH_SOURCES) == set(reference.MMEDBENCH_ACCURACY)
    notes = reference.reference_notes()
    assert any("74.27" in n and "75.31" in n for n in notes)
