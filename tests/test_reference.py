"""The study's published figures: transcription invariants (row shapes, sources, averages, counts) that a
mistyped or misplaced figure breaks, and the exact list of the sources' own inconsistencies."""

from __future__ import annotations

import pytest

from mmedkit import reference
from mmedkit.languages import LANGUAGES

ALL_MMEDBENCH = {r.name: r for r in reference.MMEDBENCH_ROWS}


def _decimals(x: float) -> int:
    text = f"{x:.10f}".rstrip("0")
    return len(text.split(".")[1])


def test_every_mmedbench_row_has_six_languages_an_average_a_setting_and_a_source() -> None:
    assert len(ALL_MMEDBENCH) == len(reference.MMEDBENCH_ROWS) == 19  # names are unique
    for r in reference.MMEDBENCH_ROWS:
        assert tuple(r.values) == (*LANGUAGES, "avg"), r.name
        assert r.setting in reference.SETTINGS and r.source in reference.SOURCES, r.name
        for v in r.values.values():
            assert v is not None and 0 < v < 100 and _decimals(v) <= 2, (r.name, v)
    assert set(reference.SETTING_NOTES) == set(reference.SETTINGS)
    zero_shot = {r.name for r in reference.MMEDBENCH_ROWS if r.setting == "zero-shot"}
    assert zero_shot == {"GPT-3.5", "GPT-4", "Gemini-1.0 pro"}
    # the settings the sources do not print are said to be missing, not left silently empty
    assert not any(r.setting == "PEFT" for r in reference.MMEDBENCH_ROWS)
    assert any(n.startswith("PEFT") for n in reference.NOT_TRANSCRIBED)


def test_the_leaderboard_names_the_same_models_and_agrees_except_where_flagged() -> None:
    assert len(reference.LEADERBOARD) == 17 and set(reference.LEADERBOARD) <= set(ALL_MMEDBENCH)
    differ = {name for name, avg in ((n, v[0]) for n, v in reference.LEADERBOARD.items())
              if ALL_MMEDBENCH[name].values["avg"] != avg}
    assert differ == {"GPT-3.5", "MEDITRON (7B)"}
    flagged = {(name, q) for name, q, _ in reference.cross_source_differences()}
    assert flagged == {("GPT-3.5", "accuracy"), ("MEDITRON (7B)", "accuracy"), ("InternLM (7B)", "accuracy"),
                       ("MMed-Llama 3 (8B)", "BLEU-1")}


def test_published_averages_against_the_mean_of_the_languages() -> None:
    assert reference.average_discrepancies() == {"GPT-4": (74.27, 75.31), "GPT-3.5": (51.47, 51.45)}
    for rows in (reference.RATIONALE_BLEU1, reference.RATIONALE_ROUGE1):
        assert reference.average_discrepancies({r.name: r.values for r in rows}) == {}
    assert reference.average_discrepancies(reference.ENGLISH_ACCURACY, columns=reference.ENGLISH_TASKS,
                                           avg="Avg.", tolerance=0.055) == {"Mistral (7B)": (62.97, 62.86)}
    # the check itself can fail: a row whose average is off by more than rounding is caught
    row = dict(reference.MMEDBENCH_ACCURACY["Llama 3 (8B)"], avg=62.81)
    assert reference.average_discrepancies({"x": row}) == {"x": (62.81, 62.79)}


def test_per_language_accuracies_are_counts_out_of_the_test_split_except_the_flagged_ones() -> None:
    """A per-language figure is k/n of MMedBench's test items; a mistyped digit almost never is."""
    assert reference.unattainable_accuracies() == {"GPT-3.5": ["en", "zh", "ja", "ru", "es"], "GPT-4": ["ja", "ru"],
                                                   "Llama 2 (7B)": ["es"], "MedAlpaca (7B)": ["ja"]}
    typo = reference.Row("x", "", "full fine-tuning", dict(ALL_MMEDBENCH["Llama 3 (8B)"].values, zh=78.24), "readme")
    assert reference.unattainable_accuracies((typo,)) == {"x": ["zh"]}


def test_split_sizes_add_up_to_the_published_totals() -> None:
    assert sum(test for _, test in reference.MMEDBENCH_COUNTS.values()) == 8518
    assert sum(train or 0 for train, _ in reference.MMEDBENCH_COUNTS.values()) == 45048  # "45k"
    assert set(reference.MMEDBENCH_COUNTS) == set(LANGUAGES) == set(reference.STUDY_KEYWORD_THRESHOLDS)


def test_headline_rows_and_their_sources() -> None:
    assert list(reference.MMEDBENCH_ACCURACY) == list(reference.HEADLINE) == list(reference.MMEDBENCH_SOURCES)
    row = reference.MMEDBENCH_ACCURACY["Llama 3 (8B)"]
    assert [row[c] for c in ("en", "zh", "ja", "fr", "ru", "es", "avg")] == [63.86, 78.23, 48.24, 50.80, 71.48,
                                                                            64.15, 62.79]
    assert reference.MMEDBENCH_SOURCES["GPT-4"].startswith("zero-shot")
    notes = reference.reference_notes()
    assert any("74.27" in n and "75.31" in n for n in notes)
    assert len(notes) == len(reference.HEADLINE) + len(reference.discrepancies())


def test_rationale_tables() -> None:
    for rows in (reference.RATIONALE_BLEU1, reference.RATIONALE_ROUGE1):
        for r in rows:
            assert tuple(r.values) == (*LANGUAGES, "avg") and r.values["avg"] is not None, r.name
            per = [r.values[c] for c in LANGUAGES]
            assert all(v is not None for v in per) or (all(v is None for v in per) and "average only" in r.note)
    full = [r.name for r in reference.RATIONALE_BLEU1 if r.values["en"] is not None]
    assert full == [r.name for r in reference.RATIONALE_ROUGE1 if r.values["en"] is not None] and len(full) == 10
    # BLEU rows that the leaderboard also prints agree with it
    for r in reference.RATIONALE_BLEU1:
        assert reference.LEADERBOARD[r.name][1] == r.values["avg"], r.name


def test_ablation_table_ends_each_family_with_the_published_final_model() -> None:
    rows = {r.name: r.values for r in reference.ABLATION}
    assert len(rows) == len(reference.ABLATION) == 15
    assert all(tuple(v) == reference.ABLATION_COLUMNS for v in rows.values())
    for final, base in (("MMedLM (7B)", "InternLM (7B)"), ("MMedLM 2 (7B)", "InternLM 2 (7B)"),
                        ("MMed-Llama 3 (8B)", "Llama 3 (8B)")):  # each step of continued pretraining helps
        acc = [rows[f"{base}, baseline"]["ACC"], rows[f"{final}, ocr"]["ACC"], rows[final]["ACC"]]
        assert acc == sorted(acc), final
    for name in ("MMedLM (7B)", "MMedLM 2 (7B)", "MMed-Llama 3 (8B)"):
        assert rows[name]["ACC"] == ALL_MMEDBENCH[name].values["avg"]
    no_rationale = [r for r in reference.ABLATION if r.values["BLEU-1"] is None]
    assert len(no_rationale) == 3 and all(r.values["ROUGE-1"] is None and r.variant.startswith("baseline")
                                          for r in no_rationale)


@pytest.mark.parametrize("name", list(reference.ENGLISH_ACCURACY))
def test_english_table_rows(name: str) -> None:
    row = reference.ENGLISH_ACCURACY[name]
    assert list(row) == [*reference.ENGLISH_TASKS, "Avg."]
    if name == "PMC-LLaMA (13B)":  # '-' in Table 3: MMLU not reported
        assert [row[t] for t in reference.ENGLISH_TASKS[:3]] == [56.4, 56.0, 77.9]
        assert all(row[t] is None for t in reference.ENGLISH_TASKS[3:]) and row["Avg."] is None
    else:
        assert all(v is not None and _decimals(v) <= 1 for t, v in row.items() if t != "Avg."), name


def test_english_table_matches_the_english_suite() -> None:
    from mmedkit.bench.suites import MMLU_SUBJECTS, SUITES

    assert len(reference.ENGLISH_ROWS) == 12
    assert {r.setting for r in reference.ENGLISH_ROWS} == {"close-source", "open-source"}
    assert reference.ENGLISH_TASKS == ("MedQA", "MedMCQA", "PubMedQA", *MMLU_SUBJECTS)
    assert {s.task for s in SUITES["english-medical"].sources} == set(reference.ENGLISH_TASKS)
