"""Figures the study published, in one place: reports print them next to ours, nothing computes them.

Study: Qiu et al., "Towards building multilingual language model for medicine", Nature Communications 15,
8384 (2024). Every row names where it was printed (:data:`SOURCES`) and the setting it was measured in. A
figure that no reachable source carries is ``None`` and :data:`NOT_TRANSCRIBED` says which and why; the
published averages are kept as printed and :func:`discrepancies` lists every place where the sources
disagree with themselves or with each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmedkit.languages import LANGUAGES

CITATION = "Qiu et al., Nature Communications 2024"

SOURCES: dict[str, str] = {
    "readme": "MMedLM README (github.com/MAGIC-AI4Med/MMedLM, version after the 2024-09-27 Nature acceptance), "
              "'Results on MMedBench'",
    "leaderboard": "MMedBench leaderboard (henrychur.github.io/MultilingualMedQA), average columns only",
    "table3": "Nature Communications 15, 8384 (2024), Table 3 (English multiple-choice benchmarks)",
    "table4": "Nature Communications 15, 8384 (2024), Table 4 (ablation study on MMedBench)",
}
"""The places the figures below were transcribed from."""

SETTINGS = ("full fine-tuning", "PEFT", "zero-shot")
"""The study's three MMedBench evaluation settings."""

COLUMNS = (*LANGUAGES, "avg")
"""Columns of a MMedBench row: the six languages in registry order, then the published average."""


@dataclass(frozen=True)
class Row:
    """One published row: a model's figures (%) in one setting, as printed in one source."""

    model: str
    size: str
    setting: str
    values: dict[str, float | None]
    source: str
    note: str = ""
    variant: str = ""

    @property
    def name(self) -> str:
        """Model and size (``Llama 3 (8B)``; the model alone for API models), then the variant if any."""
        base = f"{self.model} ({self.size})" if self.size else self.model
        return f"{base}, {self.variant}" if self.variant else base


def _row(model: str, size: str, setting: str, values: tuple[float | None, ...], source: str,
         note: str = "", columns: tuple[str, ...] = COLUMNS, variant: str = "") -> Row:
    return Row(model, size, setting, dict(zip(columns, values, strict=True)), source, note, variant)


SETTING_NOTES: dict[str, str] = {
    "full fine-tuning": "trained on MMedBench's train split before evaluation (README: 'Open-source models first "
                        "undergo training on the trainset of MMedBench'); that these are the full-fine-tuning rows "
                        "rests on Table 4 and the leaderboard giving the same averages for the final models",
    "PEFT": "LoRA (the released finetune/LoRA_finetuning.sh) on MMedBench's train split",
    "zero-shot": "evaluated zero-shot through the vendor's API (README: 'GPT and Gemini is evluated under zero-shot "
                 "setting through API')",
}
"""What each setting means and what its attribution rests on."""

MMEDBENCH_ROWS: tuple[Row, ...] = (
    _row("GPT-3.5", "", "zero-shot", (56.88, 52.29, 34.63, 32.48, 66.36, 66.06, 51.47), "readme"),
    _row("GPT-4", "", "zero-shot", (78.00, 75.07, 72.91, 56.59, 83.62, 85.67, 74.27), "readme"),
    _row("Gemini-1.0 pro", "", "zero-shot", (53.73, 60.19, 44.22, 29.90, 73.44, 69.69, 55.20), "readme"),
    _row("BLOOMZ", "7B", "full fine-tuning", (43.28, 58.06, 32.66, 26.37, 62.89, 47.34, 45.10), "readme"),
    _row("InternLM", "7B", "full fine-tuning", (44.07, 64.62, 37.19, 24.92, 58.20, 44.97, 45.67), "readme"),
    _row("Llama 2", "7B", "full fine-tuning", (43.36, 50.29, 25.13, 20.90, 66.80, 47.10, 42.26), "readme"),
    _row("MedAlpaca", "7B", "full fine-tuning", (46.74, 44.80, 29.64, 21.06, 59.38, 45.00, 41.11), "readme"),
    _row("ChatDoctor", "7B", "full fine-tuning", (43.52, 43.26, 25.63, 18.81, 62.50, 43.44, 39.53), "readme"),
    _row("PMC-LLaMA", "7B", "full fine-tuning", (47.53, 42.44, 24.12, 20.74, 62.11, 43.29, 40.04), "readme"),
    _row("Mistral", "7B", "full fine-tuning", (61.74, 71.10, 44.72, 48.71, 74.22, 63.86, 60.73), "readme"),
    _row("MEDITRON", "7B", "full fine-tuning", (55.46, 61.88, 40.20, 35.05, 67.58, 53.28, 52.24), "readme"),
    _row("InternLM 2", "1.8B", "full fine-tuning", (38.49, 64.10, 32.16, 18.01, 53.91, 36.83, 40.58), "readme",
         "Chinese printed as '64.1'"),
    _row("InternLM 2", "7B", "full fine-tuning", (57.27, 77.55, 47.74, 41.00, 68.36, 59.59, 58.59), "readme"),
    _row("BioMistral", "7B", "full fine-tuning", (57.82, 71.54, 37.19, 47.27, 69.92, 60.98, 57.45), "readme"),
    _row("Llama 3", "8B", "full fine-tuning", (63.86, 78.23, 48.24, 50.80, 71.48, 64.15, 62.79), "readme"),
    _row("MMedLM", "7B", "full fine-tuning", (49.88, 70.49, 46.23, 36.66, 72.27, 54.52, 55.01), "readme",
         "further pretrained on MMedC"),
    _row("MMedLM 2", "7B", "full fine-tuning", (61.74, 80.01, 61.81, 52.09, 80.47, 67.65, 67.30), "readme",
         "further pretrained on MMedC"),
    _row("MMedLM 2", "1.8B", "full fine-tuning", (45.40, 66.78, 42.21, 25.56, 69.14, 43.40, 48.75), "readme",
         "further pretrained on MMedC"),
    _row("MMed-Llama 3", "8B", "full fine-tuning", (66.06, 79.25, 61.81, 55.63, 75.39, 68.38, 67.75), "readme",
         "further pretrained on MMedC"),
)
"""MMedBench multiple-choice accuracy (%) per language and the published average, every row the sources carry."""

NOT_TRANSCRIBED: tuple[str, ...] = (
    "PEFT (LoRA) rows of the paper's MMedBench accuracy table: no source reachable here prints them (the README "
    "and the leaderboard give one fine-tuned row per model; the paper's table pages other than Tables 3 and 4 "
    "were not readable), so no PEFT figure is stored.",
    "Zero-shot rows of the open-source models in the paper's MMedBench accuracy table: not found in any reachable "
    "source; only the API models' zero-shot rows (GPT-3.5, GPT-4, Gemini-1.0 pro) are stored.",
    "Per-language rationale figures of Llama 3, MMed-Llama 3, BioMistral, MEDITRON, GPT-3.5 and Gemini-1.0 pro: "
    "only their averages are published in a reachable source (leaderboard, Table 4).",
    "Table 4's check-mark columns (English, Multilingual, HQ-Data, US-Data, QA answer, Rationale): the marks did "
    "not survive in the readable copy, so each ablation row is stored with its figures and name only.",
)
"""Published figures that are not stored here, each with the reason."""

LEADERBOARD: dict[str, tuple[float, float | None]] = {
    "GPT-4": (74.27, None), "MMed-Llama 3 (8B)": (67.75, 47.21), "MMedLM 2 (7B)": (67.30, 48.81),
    "Llama 3 (8B)": (62.79, 46.76), "Mistral (7B)": (60.73, 45.37), "InternLM 2 (7B)": (58.59, 46.52),
    "BioMistral (7B)": (57.45, 45.93), "Gemini-1.0 pro": (55.20, 7.28), "MMedLM (7B)": (55.01, 45.05),
    "MEDITRON (7B)": (52.23, 45.08), "GPT-3.5": (51.82, 26.01), "InternLM (7B)": (45.67, 42.12),
    "BLOOMZ (7B)": (45.10, 43.22), "Llama 2 (7B)": (42.26, 44.24), "MedAlpaca (7B)": (41.11, 43.49),
    "PMC-LLaMA (7B)": (40.04, 43.16), "ChatDoctor (7B)": (39.53, 42.21),
}
"""The leaderboard's 17 rows: (average accuracy, average rationale BLEU-1 as labelled; ``None``: printed "NA").
It spells two names differently ("LLaMA 2", "Med-Alpaca"); they are keyed here by the names above."""

RATIONALE_NOTE = ("labelled BLEU-1 / ROUGE-1 as printed; the released metrics script computes NLTK sentence_bleu "
                   "with default weights (cumulative BLEU-4) and rouge-l F: see mmedkit.bench.rationale")


def _rationale(model: str, size: str, pairs: tuple[tuple[float, float], ...]) -> tuple[Row, Row]:
    return (_row(model, size, "full fine-tuning", tuple(p[0] for p in pairs), "readme"),
            _row(model, size, "full fine-tuning", tuple(p[1] for p in pairs), "readme"))


_RATIONALE_README = [
    _rationale("BLOOMZ", "7B", ((45.94, 40.51), (48.37, 48.26), (44.71, 48.61), (44.47, 41.05), (29.95, 21.50),
                                (45.91, 40.77), (43.22, 40.12))),
    _rationale("InternLM", "7B", ((46.53, 41.86), (48.24, 48.64), (44.89, 49.83), (41.80, 37.95), (27.87, 21.20),
                                  (43.42, 38.59), (42.12, 39.68))),
    _rationale("Llama 2", "7B", ((46.87, 41.39), (46.62, 46.57), (48.53, 51.21), (44.43, 40.38), (33.05, 23.24),
                                 (45.96, 40.37), (44.24, 40.53))),
    _rationale("MedAlpaca", "7B", ((47.33, 42.31), (45.72, 46.49), (45.35, 49.12), (43.78, 40.41), (32.80, 23.15),
                                   (45.99, 40.57), (43.49, 40.34))),
    _rationale("ChatDoctor", "7B", ((47.22, 41.97), (44.66, 45.81), (38.87, 47.95), (44.64, 40.25), (32.19, 23.37),
                                    (45.68, 40.71), (42.21, 40.01))),
    _rationale("PMC-LLaMA", "7B", ((47.33, 42.87), (45.87, 46.18), (44.52, 48.44), (43.80, 40.23), (31.14, 22.28),
                                   (46.30, 40.68), (43.16, 40.12))),
    _rationale("Mistral", "7B", ((47.16, 41.82), (48.34, 47.91), (48.80, 50.60), (45.83, 40.88), (34.52, 24.68),
                                 (47.55, 41.41), (45.37, 41.22))),
    _rationale("InternLM 2", "7B", ((49.48, 44.12), (51.38, 51.58), (50.64, 53.46), (46.73, 42.00), (32.93, 24.05),
                                    (47.94, 41.96), (46.52, 42.86))),
    _rationale("MMedLM", "7B", ((47.37, 41.98), (48.68, 49.28), (48.95, 52.34), (45.39, 41.41), (33.24, 24.67),
                                (46.68, 41.35), (45.05, 41.84))),
    _rationale("MMedLM 2", "7B", ((50.02, 44.77), (51.39, 51.78), (54.79, 57.10), (49.04, 45.30), (37.49, 28.18),
                                  (50.14, 44.59), (48.81, 45.29))),
]
_NO_LANGS = (None,) * len(LANGUAGES)
_AVG_ONLY = "per-language figures not found in a reachable source; average only"

RATIONALE_BLEU1: tuple[Row, ...] = (
    *(b for b, _ in _RATIONALE_README),
    _row("Llama 3", "8B", "full fine-tuning", (*_NO_LANGS, 46.76), "leaderboard", _AVG_ONLY),
    _row("MMed-Llama 3", "8B", "full fine-tuning", (*_NO_LANGS, 47.21), "leaderboard", _AVG_ONLY),
    _row("BioMistral", "7B", "full fine-tuning", (*_NO_LANGS, 45.93), "leaderboard", _AVG_ONLY),
    _row("MEDITRON", "7B", "full fine-tuning", (*_NO_LANGS, 45.08), "leaderboard", _AVG_ONLY),
    _row("GPT-3.5", "", "zero-shot", (*_NO_LANGS, 26.01), "leaderboard", _AVG_ONLY),
    _row("Gemini-1.0 pro", "", "zero-shot", (*_NO_LANGS, 7.28), "leaderboard", _AVG_ONLY),
)
"""Rationale similarity, the column the study labels BLEU-1 (%), per language and average."""

RATIONALE_ROUGE1: tuple[Row, ...] = (
    *(r for _, r in _RATIONALE_README),
    _row("Llama 3", "8B", "full fine-tuning", (*_NO_LANGS, 42.84), "table4", _AVG_ONLY),
    _row("MMed-Llama 3", "8B", "full fine-tuning", (*_NO_LANGS, 43.29), "table4", _AVG_ONLY),
)
"""Rationale similarity, the column the study labels ROUGE-1 (%), per language and average."""

_TABLE4: dict[str, tuple[tuple[float | None, ...], ...]] = {
    "MMedLM": ((43.33, None, None), (45.66, 42.12, 39.68), (47.38, 42.12, 39.83), (51.33, 44.46, 41.37),
               (55.01, 45.05, 41.84)),
    "MMedLM 2": ((56.17, None, None), (58.59, 46.52, 42.86), (58.28, 46.46, 42.99), (64.43, 47.95, 44.57),
                 (67.30, 48.81, 45.29)),
    "MMed-Llama 3": ((58.72, None, None), (62.79, 46.76, 42.84), (61.39, 46.45, 42.59), (64.40, 46.93, 43.13),
                     (67.75, 47.22, 43.29)),
}
ABLATION_COLUMNS = ("ACC", "BLEU-1", "ROUGE-1")
_NO_RATIONALE = "'/' in Table 4: the model cannot generate rationale sentences"
_SUB = "an intermediate step, printed with the subscript '{}' (what it trained on is in the lost check-mark columns)"
ABLATION: tuple[Row, ...] = tuple(
    _row(model, size, "ablation", values, "table4", _SUB.format(variant) if variant in ("en", "ocr") else note,
         ABLATION_COLUMNS, variant)
    for family, size, base in (("MMedLM", "7B", "InternLM"), ("MMedLM 2", "7B", "InternLM 2"),
                               ("MMed-Llama 3", "8B", "Llama 3"))
    for model, variant, values, note in (
        (base, "baseline, no rationale", _TABLE4[family][0], f"printed as 'Baseline ({base})'; {_NO_RATIONALE}"),
        (base, "baseline", _TABLE4[family][1], f"printed as 'Baseline ({base})'"),
        (family, "en", _TABLE4[family][2], ""),
        (family, "ocr", _TABLE4[family][3], ""),
        (family, "", _TABLE4[family][4], "the final model"),
    ))
"""Table 4: MMedBench average accuracy and rationale scores of each step from the base model to the final one."""

ENGLISH_TASKS = ("MedQA", "MedMCQA", "PubMedQA", "MMLU_CK", "MMLU_MG", "MMLU_AN", "MMLU_PM", "MMLU_CB", "MMLU_CM")
"""The columns of the study's English medical benchmark table (Table 3), in its order."""

_EN_COLUMNS = (*ENGLISH_TASKS, "Avg.")
ENGLISH_ROWS: tuple[Row, ...] = tuple(
    _row(model, size, group, values, "table3", f"year {year}", _EN_COLUMNS)
    for group, model, size, year, values in (
        ("close-source", "GPT-3.5", "", "2022.11", (57.7, 72.7, 53.8, 74.7, 74.0, 65.9, 72.8, 72.9, 64.7, 67.69)),
        ("close-source", "GPT-4", "", "2023.03", (85.8, 72.3, 70.0, 90.2, 94.0, 84.4, 94.5, 93.8, 83.2, 85.36)),
        ("close-source", "Flan-PaLM", "540B", "2022.12",
         (67.6, 57.6, 79.0, 80.4, 75.0, 63.7, 83.8, 88.9, 76.3, 74.70)),
        ("close-source", "MedPaLM 2", "", "2023.05", (86.5, 72.3, 81.8, 88.7, 92.0, 84.4, 95.2, 95.8, 83.2, 86.66)),
        ("open-source", "MedAlpaca", "7B", "2023.3", (41.7, 37.5, 72.8, 57.4, 69.0, 57.0, 67.3, 65.3, 54.3, 58.03)),
        ("open-source", "PMC-LLaMA", "13B", "2023.9", (56.4, 56.0, 77.9, None, None, None, None, None, None, None)),
        ("open-source", "MEDITRON", "7B", "2023.11", (57.2, 59.2, 74.4, 64.6, 59.9, 49.3, 55.4, 53.8, 44.8, 57.62)),
        ("open-source", "Mistral", "7B", "2023.12", (50.8, 48.2, 75.4, 68.7, 71.0, 55.6, 68.4, 68.1, 59.5, 62.97)),
        ("open-source", "Gemma", "7B", "2024.2", (47.2, 49.0, 76.2, 69.8, 70.0, 59.3, 66.2, 79.9, 60.1, 64.19)),
        ("open-source", "BioMistral", "7B", "2024.2", (50.6, 48.1, 77.5, 59.9, 64.0, 56.5, 60.4, 59.0, 54.7, 58.97)),
        ("open-source", "Llama 3", "8B", "2024.4", (60.9, 50.7, 73.0, 72.1, 76.0, 63.0, 77.2, 79.9, 64.2, 68.56)),
        ("open-source", "MMed-Llama 3", "8B", "-", (65.4, 63.5, 80.1, 71.3, 85.0, 69.6, 77.6, 74.3, 66.5, 72.59)),
    ))
"""Table 3, every row ('-' in the table is ``None``). ``setting`` holds the table's group (close-/open-source)."""

ENGLISH_ACCURACY: dict[str, dict[str, float | None]] = {r.name: r.values for r in ENGLISH_ROWS}
"""Accuracy (%) on the English medical benchmarks (Table 3) by row name."""

HEADLINE = ("GPT-4", "MMed-Llama 3 (8B)", "MMedLM 2 (7B)", "Llama 3 (8B)")
"""The rows reports put next to a run as columns and bars; the complete tables are shown separately."""

_BY_NAME = {r.name: r for r in MMEDBENCH_ROWS}
MMEDBENCH_ACCURACY: dict[str, dict[str, float | None]] = {name: _BY_NAME[name].values for name in HEADLINE}
"""MMedBench accuracy (%) of the :data:`HEADLINE` rows, per language and the published average (``avg``)."""

MMEDBENCH_SOURCES: dict[str, str] = {
    name: f"{_BY_NAME[name].setting}, {SOURCES[_BY_NAME[name].source]}" for name in HEADLINE}
"""Setting and source of each :data:`MMEDBENCH_ACCURACY` row."""

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


def average_discrepancies(rows: dict[str, dict[str, float | None]] | None = None, *, columns: tuple[str, ...] = (),
                          avg: str = "avg", tolerance: float = 0.01) -> dict[str, tuple[float, float]]:
    """Rows whose published average differs from the mean of their columns by more than rounding allows:
    ``{name: (published, mean)}``. Default: every MMedBench accuracy row, six languages, 2-decimal figures.

    GPT-4's published average, 74.27, is not the mean of its per-language figures (75.31).
    """
    rows = {r.name: r.values for r in MMEDBENCH_ROWS} if rows is None else rows
    columns = columns or tuple(LANGUAGES)
    out = {}
    for name, row in rows.items():
        values, published = [row.get(c) for c in columns], row.get(avg)
        if published is None or any(v is None for v in values):
            continue
        mean = sum(v for v in values if v is not None) / len(values)
        if abs(mean - published) > tolerance:
            out[name] = (published, round(mean, 2))
    return out


def unattainable_accuracies(rows: tuple[Row, ...] = MMEDBENCH_ROWS) -> dict[str, list[str]]:
    """Per-language accuracies that no whole number of correct answers out of MMedBench's test size rounds to
    (``{name: [language codes]}``): a subset was scored, the figure was truncated, or it was mistyped."""
    out: dict[str, list[str]] = {}
    for r in rows:
        for code in LANGUAGES:
            value, n = r.values.get(code), MMEDBENCH_COUNTS[code][1]
            if value is not None and not any(round(100 * k / n, 2) == value for k in range(n + 1)):
                out.setdefault(r.name, []).append(code)
    return out


def _published_averages() -> dict[tuple[str, str], dict[str, float]]:
    """Every average printed for a row: ``{(row, quantity): {source: value}}``."""
    seen: dict[tuple[str, str], dict[str, float]] = {}

    def put(name: str, quantity: str, source: str, value: float | None) -> None:
        if value is not None:
            seen.setdefault((name, quantity), {})[source] = value

    for quantity, rows in (("accuracy", MMEDBENCH_ROWS), ("BLEU-1", RATIONALE_BLEU1), ("ROUGE-1", RATIONALE_ROUGE1)):
        for r in rows:
            put(r.name, quantity, r.source, r.values["avg"])
    for name, (acc, bleu) in LEADERBOARD.items():
        put(name, "accuracy", "leaderboard", acc)
        put(name, "BLEU-1", "leaderboard", bleu)
    for r in ABLATION:
        if r.variant not in ("baseline", ""):
            continue  # intermediate steps and the baseline trained without rationales appear in no other table
        name = f"{r.model} ({r.size})"
        for column, quantity in zip(ABLATION_COLUMNS, ("accuracy", "BLEU-1", "ROUGE-1"), strict=True):
            put(name, quantity, "table4", r.values[column])
    return seen


def cross_source_differences() -> list[tuple[str, str, dict[str, float]]]:
    """The same average printed differently by two sources: ``(row, quantity, {source: value})``."""
    return [(name, quantity, by) for (name, quantity), by in _published_averages().items()
            if len(set(by.values())) > 1]


_SHORT = {"readme": "MMedLM README", "leaderboard": "leaderboard", "table3": "paper's Table 3",
          "table4": "paper's Table 4"}


def discrepancies() -> list[str]:
    """Sentences for reports: every inconsistency found in and between the published tables."""
    notes = [f"{name}: the published MMedBench average {avg:.2f} is not the mean of its per-language figures "
             f"({mean:.2f})." for name, (avg, mean) in average_discrepancies().items()]
    for label, rows in (("BLEU-1", RATIONALE_BLEU1), ("ROUGE-1", RATIONALE_ROUGE1)):
        notes += [f"{name}: the published rationale {label} average {avg:.2f} is not the mean of its "
                  f"per-language figures ({mean:.2f})."
                  for name, (avg, mean) in average_discrepancies({r.name: r.values for r in rows}).items()]
    notes += [f"{name} (Table 3): the published average {avg:.2f} is not the mean of its nine columns ({mean:.2f})."
              for name, (avg, mean) in average_discrepancies(ENGLISH_ACCURACY, columns=ENGLISH_TASKS, avg="Avg.",
                                                              tolerance=0.055).items()]
    names = {code: LANGUAGES[code].name for code in LANGUAGES}
    notes += [f"{name}: {', '.join(names[c] for c in codes)} accuracy cannot be a count of correct answers out of "
              f"MMedBench's test items ({', '.join(str(MMEDBENCH_COUNTS[c][1]) for c in codes)}), rounded: scored "
              "on a subset, truncated, or mistyped." for name, codes in unattainable_accuracies().items()]
    notes += [f"{name}: the average {quantity} differs between sources: "
              + ", ".join(f"{v:.2f} in the {_SHORT[s]}" for s, v in by.items()) + "."
              for name, quantity, by in cross_source_differences()]
    return notes


def reference_notes() -> list[str]:
    """Sentences for reports: the sources of the headline rows and every known inconsistency of the tables."""
    return [f"{name}: {src} ({CITATION})." for name, src in MMEDBENCH_SOURCES.items()] + discrepancies()
