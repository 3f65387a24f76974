"""Figures the study published, in one place: reports print them next to ours, nothing computes them.

Source: Qiu et al., "Towards building multilingual language model for medicine", Nature Communications
15, 8384 (2024), its MMedBench leaderboard and its released code (MMedLM). ``None`` marks a figure not
transcribed here.
"""

from __future__ import annotations

from mmedkit.languages import LANGUAGES

CITATION = "Qiu et al., Nature Communications 2024"

MMEDBENCH_ACCURACY: dict[str, dict[str, float | None]] = {
    "GPT-4": {"en": 78.00, "zh": 75.07, "ja": 72.91, "fr": 56.59, "ru": 83.62, "es": 85.67, "avg": 74.27},
    "MMed-Llama 3 (8B)": {"en": 66.06, "zh": 79.25, "ja": 61.81, "fr": 55.63, "ru": 75.39, "es": 68.38,
                          "avg": 67.75},
    "MMedLM 2 (7B)": {"en": 61.74, "zh": 80.01, "ja": 61.81, "fr": 52.09, "ru": 80.47, "es": 67.65,
                      "avg": 67.30},
    "Llama 3 (8B)": {"en": 63.86, "zh": 78.23, "ja": 48.24, "fr": 50.80, "ru": 71.48, "es": 64.15, "avg": 62.79},
}
"""MMedBench multiple-choice accuracy (%) per language and the published average (``avg``), as printed:
see :func:`average_discrepancies` for a row whose published average is not the mean of its languages."""

MMEDBENCH_SOURCES: dict[str, str] = {
    "GPT-4": "MMedBench accuracy table, zero-shot (commercial API, not fine-tuned)",
    "MMed-Llama 3 (8B)": "MMedBench accuracy table, fine-tuned on MMedBench's train split",
    "MMedLM 2 (7B)": "MMedBench accuracy table, fine-tuned on MMedBench's train split",
    "Llama 3 (8B)": "MMedBench accuracy table, fine-tuned on MMedBench's train split",
}
"""Where each row of :data:`MMEDBENCH_ACCURACY` comes from (table and setting). The paper's other MMedBench
rows (17 models in three settings: full fine-tuning, PEFT, zero-shot) are not transcribed here."""

def average_discrepancies(rows: dict[str, dict[str, float | None]] | None = None,
                          tolerance: float = 0.01) -> dict[str, tuple[float, float]]:
    """Rows whose published ``avg`` differs from the mean of their six languages: ``{name: (published, mean)}``.

    GPT-4's published average, 74.27, is not the mean of its per-language figures (75.31).
    """
    out = {}
    for name, row in (MMEDBENCH_ACCURACY if rows is None else rows).items():
        values = [row.get(c) for c in LANGUAGES]
        avg = row.get("avg")
        if avg is None or any(v is None for v in values):
            continue
        mean = sum(v for v in values if v is not None) / len(values)
        if abs(mean - avg) > tolerance:
            out[name] = (avg, round(mean, 2))
    return out


def reference_notes() -> list[str]:
    """Sentences for reports: the sources of the published rows and their known inconsistencies."""
    notes = [f"{name}: {src} ({CITATION})." for name, src in MMEDBENCH_SOURCES.items()]
    notes += [f"{name}: the published average {avg:.2f} is not the mean of its per-language figures ({mean:.2f})."
              for name, (avg, mean) in average_discrepancies().items()]
    return notes

ENGLISH_TASKS = ("MedQA", "MedMCQA", "PubMedQA", "MMLU_CK", "MMLU_MG", "MMLU_AN", "MMLU_PM", "MMLU_CB", "MMLU_CM")
"""The columns of the study's English medical benchmark table (Table 3), in its order."""

ENGLISH_ACCURACY: dict[str, dict[str, float]] = {
    name: dict(zip([*ENGLISH_TASKS, "Avg."], values, strict=True)) for name, values in {
        "GPT-4": (85.8, 72.3, 70.0, 90.2, 94.0, 84.4, 94.5, 93.8, 83.2, 85.36),
        "MedPaLM 2": (86.5, 72.3, 81.8, 88.7, 92.0, 84.4, 95.2, 95.8, 83.2, 86.66),
        "Llama 3 (8B)": (60.9, 50.7, 73.0, 72.1, 76.0, 63.0, 77.2, 79.9, 64.2, 68.56),
        "MMed-Llama 3 (8B)": (65.4, 63.5, 80.1, 71.3, 85.0, 69.6, 77.6, 74.3, 66.5, 72.59),
    }.items()
}
"""Accuracy (%) on the English medical benchmarks (Table 3)."""

MMEDBENCH_COUNTS: dict[str, tuple[int | None, int]] = {
    "en": (10178, 1273), "zh": (27400, 3426), "ja": (1590, 199), "fr": (2171, 622), "ru": (1052, 256),
    "es": (2657, 2742),
}
"""MMedBench's split sizes per language: (train, test) items."""

STUDY_KEYWORD_THRESHOLDS: dict[str, tuple[int, float]] = {
    "en": (5, 0.04), "zh": (5, 0.05), "ja": (5, 0.05), "ru": (4, 0.02), "es": (4, 0.04), "fr": (4, 0.04),
}
"""The medical keyword filter's thresholds in the study's released script: (distinct keywords, ratio of
characters covered by keywords)."""
