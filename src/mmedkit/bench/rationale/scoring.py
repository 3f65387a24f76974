"""Rationale metrics of a finished run: per item, per language and averaged over languages.

Only items with a reference rationale count. ``human_checked_only`` further keeps those whose
rationale passed human checking, as the study reports (1,136 items on MMedBench); by default (None) it is
on whenever the data carries ``human_checked`` marks, and the counts say how many were kept.
Writes ``rationale.json`` (definitions, segmenters, per-language and average tables),
``rationale_samples.jsonl`` (per item) and ``rationale.md`` next to the run, and adds the summary to
its results.json under ``rationale``.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mmedkit.bench.items import Item
from mmedkit.bench.rationale import bertscore as bs
from mmedkit.bench.rationale import doc
from mmedkit.bench.rationale.ngram import BLEU_ORDERS, SMOOTHING, text_metrics
from mmedkit.bench.rationale.runs import RESULTS, load_run, run_items
from mmedkit.bench.rationale.study import DEFINITIONS as STUDY_DEFINITIONS
from mmedkit.bench.rationale.study import study_available, study_scores, study_tokenizer_name
from mmedkit.bench.rationale.text import extract_rationale, tokenize
from mmedkit.bench.report import _fmt
from mmedkit.languages import LANGUAGES, get_language
from mmedkit.utils import atomic_write_json, atomic_write_text

RATIONALE_JSON = "rationale.json"
RATIONALE_SAMPLES = "rationale_samples.jsonl"
RATIONALE_MD = "rationale.md"
LABELS = {**{f"bleu-{n}": f"BLEU-{n}" for n in BLEU_ORDERS}, "rouge-1": "ROUGE-1", "rouge-2": "ROUGE-2",
          "rouge-L": "ROUGE-L", "bertscore-P": "BERTScore P", "bertscore-R": "BERTScore R",
          "bertscore-F1": "BERTScore F1", "study_bleu": "study script 'BLEU-1' (=cumulative BLEU-4)",
          "study_rouge": "study script 'ROUGE-1' (=ROUGE-L F)"}
DEFINITIONS = {
    "readings": "two readings of the study's BLEU/ROUGE, neither settled: its released script's (study_bleu, "
                "study_rouge: what metrics/rationale_similarity.py computes under the names BLEU-1 / ROUGE-1) and "
                "its leaderboard's (BLEU-1..4, ROUGE-1/2/L, as SubmissionTutorial.md asks). The published BLEU "
                "values (about 42-49) look like unigram BLEU (BLEU-1), not the script's cumulative BLEU-4",
    "bleu-N": "sentence BLEU with n-gram orders 1..N on the segmented, case-folded tokens (effective order, "
              "smoothing as recorded), equal to sacrebleu with tokenize='none' on the same tokens",
    "rouge-N / rouge-L": "F1 of clipped n-gram overlap / of the longest common subsequence on the same tokens, "
                         "equal to rouge-score given the same tokens",
    "bertscore-P/R/F1": "BERTScore greedy cosine matching on one encoder layer, no idf; rescaled when recorded",
    **STUDY_DEFINITIONS,
}


@dataclass
class RationaleConfig:
    """How rationale metrics are computed."""

    human_checked_only: bool | None = None
    """Only human-checked references; None: on when the data carries human_checked marks."""
    casefold: bool = True
    smoothing: str = "exp"
    study: bool = True
    """Also compute the study's variants (needs nltk and rouge; skipped with a note when missing)."""
    bertscore_model: str | None = None
    """Local folder or hub id (the study: bert-base-multilingual-cased); None skips BERTScore."""
    bertscore_layer: int | None = None
    bertscore_batch_size: int = 64
    rescale: str | None = None
    """None, ``auto`` (baseline estimated from the references) or a bert-score baseline folder."""
    device: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.smoothing not in SMOOTHING:
            raise ValueError(f"unknown BLEU smoothing {self.smoothing!r}; expected one of {', '.join(SMOOTHING)}")
        if self.rescale and not self.bertscore_model:
            raise ValueError("--rescale applies to BERTScore: pass --bertscore-model too")


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def score_pairs(pairs: Sequence[tuple[str, str, str]], cfg: RationaleConfig,
                scorer: bs.BERTScorer | None = None) -> tuple[list[dict[str, float]], dict[str, Any]]:
    """Metrics of ``(language, hypothesis, reference)`` triples, and notes on how they were computed."""
    notes: dict[str, Any] = {}
    rows = []
    for lang, hyp, ref in pairs:
        rows.append(text_metrics(tokenize(hyp, lang, casefold=cfg.casefold),
                                 tokenize(ref, lang, casefold=cfg.casefold), smoothing=cfg.smoothing))
    if cfg.study:
        missing = study_available()
        if missing:
            notes["study"] = f"not computed: {missing}"
        else:
            for row, (lang, hyp, ref) in zip(rows, pairs, strict=True):
                row.update(study_scores(hyp, ref, lang))
            notes["study"] = {code: study_tokenizer_name(code) for code in dict.fromkeys(p[0] for p in pairs)}
    if scorer is None and cfg.bertscore_model:
        scorer = bs.BERTScorer(cfg.bertscore_model, layer=cfg.bertscore_layer, device=cfg.device,
                               batch_size=cfg.bertscore_batch_size)
    if scorer is not None and pairs:
        notes["bertscore"] = {**scorer.info(), "rescaled": bool(cfg.rescale), "baselines": {}}
        by_lang: dict[str, list[int]] = defaultdict(list)
        for i, (lang, _, _) in enumerate(pairs):
            by_lang[lang].append(i)
        raw = scorer.score([p[1] for p in pairs], [p[2] for p in pairs])
        for lang, idx in by_lang.items():
            base = _baseline(scorer, cfg, lang, [pairs[i][2] for i in idx]) if cfg.rescale else None
            if base:
                notes["bertscore"]["baselines"][lang] = base.as_dict()
            for i in idx:
                s = base.rescale(raw[i]) if base else raw[i]
                rows[i].update({"bertscore-P": 100 * s.p, "bertscore-R": 100 * s.r, "bertscore-F1": 100 * s.f})
    return rows, notes


def _baseline(scorer: bs.BERTScorer, cfg: RationaleConfig, lang: str, references: list[str]) -> bs.Baseline:
    if cfg.rescale == "auto":
        return bs.estimate_baseline(scorer, references, seed=cfg.seed)
    return bs.find_baseline(str(cfg.rescale), lang, scorer.model_name, scorer.layer)


def _table(rows: list[dict[str, Any]], keys: list[str]) -> dict[str, Any]:
    per_language: dict[str, Any] = {}
    for code in LANGUAGES:
        mine = [r for r in rows if r["language"] == code]
        if mine:
            per_language[code] = {"n": len(mine), "empty": sum(r["empty"] for r in mine),
                                  **{k: _mean([r[k] for r in mine]) for k in keys}}
    average = {k: _mean([v[k] for v in per_language.values() if v[k] is not None]) for k in keys}
    return {"per_language": per_language,
            "average": {"n": len(rows), "languages": len(per_language), **average}}


def score_run(run_dir: str | os.PathLike[str], cfg: RationaleConfig | None = None, *,
              items: Sequence[Item] | None = None, scorer: bs.BERTScorer | None = None) -> dict[str, Any]:
    """Compute rationale metrics for the run in ``run_dir``, write them next to it, return the summary.

    ``items`` saves reloading the benchmark (the engine passes the items it ran); ``scorer`` reuses a
    loaded BERTScore model across runs.
    """
    cfg = cfg or RationaleConfig()
    run = load_run(run_dir)
    run.require_generated()
    by_id = run_items(run, items)
    selected: list[tuple[dict[str, Any], Item]] = []
    run_its = [by_id[s["id"]] for s in run.samples]
    counts = {"samples": len(run.samples), "no_reference": 0, "not_human_checked": 0,
              "human_checked": sum(bool(it.rationale and it.human_checked) for it in run_its)}
    checked_only = cfg.human_checked_only
    if checked_only is None:
        checked_only = any(it.human_checked is not None for it in run_its)
    for s in run.samples:
        it = by_id[s["id"]]
        if not it.rationale:
            counts["no_reference"] += 1
        elif checked_only and not it.human_checked:
            counts["not_human_checked"] += 1
        else:
            selected.append((s, it))
    pairs = [(it.language, extract_rationale(s.get("output")), it.rationale or "") for s, it in selected]
    scores, notes = score_pairs(pairs, cfg, scorer)
    rows = [{"id": it.id, "language": it.language, "human_checked": it.human_checked, "correct": s.get("correct"),
             "empty": not hyp, "rationale": hyp, **{k: round(v, 4) for k, v in sc.items()}}
            for (s, it), (_, hyp, _), sc in zip(selected, pairs, scores, strict=True)]
    keys = list(scores[0]) if scores else []
    summary = {
        "config": {**asdict(cfg), "human_checked_only": checked_only,
                   "human_checked_only_default": cfg.human_checked_only is None},
        "counts": {**counts, "scored": len(rows)},
        "segmenters": {c: get_language(c).segmenter_name for c in dict.fromkeys(r["language"] for r in rows)},
        "metrics": keys,
        "labels": {k: LABELS.get(k, k) for k in keys},
        "definitions": DEFINITIONS,
        "notes": notes,
        **_table(rows, keys),
    }
    out = Path(run_dir)
    atomic_write_text(out / RATIONALE_SAMPLES, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    atomic_write_json(out / RATIONALE_JSON, summary)
    title = str((run.results.get("model") or {}).get("model") or out)
    atomic_write_text(out / RATIONALE_MD, doc.to_markdown(rationale_blocks(summary, title=title)))
    results = dict(run.results)
    results["rationale"] = {k: summary[k] for k in ("counts", "segmenters", "per_language", "average", "labels")}
    atomic_write_json(out / RESULTS, results)
    return summary


def rationale_blocks(summary: dict[str, Any], *, title: str, level: int = 1) -> list[doc.Block]:
    """Per-language and average table of a rationale summary, with how it was computed."""
    keys, labels = summary["metrics"], summary["labels"]
    c = summary["counts"]
    rows = [[LANGUAGES[code].name, str(row["n"]), str(row["empty"]), *(_fmt(row[k]) for k in keys)]
            for code, row in summary["per_language"].items()]
    avg = summary["average"]
    rows.append(["Average", str(avg["n"]), "", *(_fmt(avg[k]) for k in keys)])
    notes = [f"{k}: {v}" for k, v in summary["definitions"].items()]
    notes += [f"{name}: {json.dumps(note, ensure_ascii=False)}" for name, note in summary["notes"].items()]
    return [
        doc.Heading(f"Rationale metrics: {title}", level),
        doc.Para(f"{c['scored']} items with a reference rationale scored"
                 f"{' (human-checked only, as the study reports)' if summary['config']['human_checked_only'] else ''}"
                 f"; {c.get('human_checked', '–')} human-checked; "
                 f"{c['no_reference']} without reference, {c['not_human_checked']} not human-checked left out. "
                 "Scores in %, mean over items; Average = mean over languages."),
        doc.Table(["Language", "n", "empty", *(labels[k] for k in keys)], rows, frozenset({len(rows) - 1})),
        doc.Para("Segmenters: " + ", ".join(f"{k} = {v}" for k, v in summary["segmenters"].items()) + "."),
        doc.Bullets(notes),
    ]
