"""The study's published tables as report blocks: every row, grouped by setting, each with its source, then
the figures not transcribed and every inconsistency of the sources (:mod:`mmedkit.reference` holds the data)."""

from __future__ import annotations

from collections.abc import Sequence

from mmedkit import reference as ref
from mmedkit.bench.rationale import doc
from mmedkit.languages import LANGUAGES

PUBLISHED_HEADING = "Published results of the study"
_SOURCE = {"readme": "README", "leaderboard": "leaderboard", "table3": "Table 3", "table4": "Table 4"}


def _fmt(x: float | None, digits: int) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _table(rows: Sequence[ref.Row], columns: Sequence[str], *, group: bool = False, digits: int = 2) -> doc.Table:
    """Figures with the decimals the source prints (``digits``; averages always two)."""
    labels = [LANGUAGES[c].name if c in LANGUAGES else ("Avg." if c == "avg" else c) for c in columns]
    body = [[r.name, *([r.setting] if group else []),
             *(_fmt(r.values[c], 2 if c in ("avg", "Avg.") else digits) for c in columns), _SOURCE[r.source],
             r.note] for r in rows]
    return doc.Table(["Model", *(["Group"] if group else []), *labels, "Source", "Note"], body)


def published_blocks(level: int = 2) -> list[doc.Block]:
    """Every published row: MMedBench accuracy by setting, rationale similarity, the ablation, English Table 3."""
    sub = min(level + 1, 3)
    blocks: list[doc.Block] = [
        doc.Heading(PUBLISHED_HEADING, level),
        doc.Para(f"{ref.CITATION}, as printed (%); a dash is a figure the source does not give. Sources:"),
        doc.Bullets([f"{key}: {text}" for key, text in zip(_SOURCE.values(), ref.SOURCES.values(), strict=True)]),
    ]
    for setting in ref.SETTINGS:
        rows = [r for r in ref.MMEDBENCH_ROWS if r.setting == setting]
        blocks += [doc.Heading(f"MMedBench accuracy, {setting}", sub), doc.Para(ref.SETTING_NOTES[setting] + ".")]
        blocks.append(_table(rows, ref.COLUMNS) if rows else doc.Para(
            "Not transcribed: " + " ".join(n for n in ref.NOT_TRANSCRIBED if n.lower().startswith(setting.lower()))))
    for label, rows in (("BLEU-1", ref.RATIONALE_BLEU1), ("ROUGE-1", ref.RATIONALE_ROUGE1)):
        blocks += [doc.Heading(f"Rationale similarity, {label} as labelled by the study", sub),
                   _table(rows, ref.COLUMNS)]
    blocks += [doc.Para(f"Rationale columns: {ref.RATIONALE_NOTE}."),
               doc.Heading("Ablation (Table 4): MMedBench average accuracy and rationale", sub),
               _table(ref.ABLATION, ref.ABLATION_COLUMNS),
               doc.Heading("English medical benchmarks (Table 3)", sub),
               _table(ref.ENGLISH_ROWS, (*ref.ENGLISH_TASKS, "Avg."), group=True, digits=1),
               doc.Heading("Not transcribed", sub), doc.Bullets(list(ref.NOT_TRANSCRIBED)),
               doc.Heading("Inconsistencies in the published figures", sub), doc.Bullets(ref.discrepancies())]
    return blocks
