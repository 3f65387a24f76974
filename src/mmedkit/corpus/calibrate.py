"""Calibrate the medical keyword filter's thresholds on labelled documents.

Input: JSONL files, one document a line with ``text``, ``lang`` (ISO code), ``label`` (``medical`` or
``general``) and ``source``. Every document is scanned once; precision, recall and F1 are then
computed at every (distinct-keyword count, covered-character ratio) pair of a grid, per language.

Thresholds are chosen for stability, not for the best single cell: the chosen cell maximises the F1
averaged over its grid neighbourhood (a plateau beats a spike), ties going to the higher cell F1, then
to the higher keyword count (on a plateau the count costs nothing and guards against one repeated
word), then to the lower ratio. Because a small development sample flatters any tuned choice, the
report also gives k-fold cross-validated and split-half F1, where thresholds are chosen on one part
and scored on the other.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmedkit.corpus.keywords import DEFAULT_THRESHOLDS, STUDY_THRESHOLDS, matcher_for
from mmedkit.languages import get_language
from mmedkit.records import Record, read_records

DEFAULT_COUNTS: tuple[int, ...] = tuple(range(2, 11))
"""From 2: one keyword, however often repeated, is no evidence of a medical document."""
DEFAULT_RATIOS: tuple[float, ...] = (0.0, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1)
LABELS = {"medical": True, "general": False}


@dataclass(frozen=True)
class Grid:
    """The threshold pairs to evaluate: every count combined with every ratio."""

    counts: tuple[int, ...] = DEFAULT_COUNTS
    ratios: tuple[float, ...] = DEFAULT_RATIOS

    def __post_init__(self) -> None:
        if not self.counts or not self.ratios:
            raise ValueError("grid needs at least one count and one ratio")
        if list(self.counts) != sorted(set(self.counts)) or list(self.ratios) != sorted(set(self.ratios)):
            raise ValueError("grid counts and ratios must be strictly increasing")


@dataclass(frozen=True)
class LabelledDoc:
    """One labelled document."""

    text: str
    lang: str
    medical: bool
    source: str


def source_key(source: str) -> str:
    """Group ``owner/repo@commit:path`` sources by repository (``owner/repo``)."""
    return source.split("@", 1)[0].split(":", 1)[0] or "(unknown)"


def read_labelled(paths: str | Path | Iterable[str | Path]) -> list[LabelledDoc]:
    """Read labelled JSONL files (plain or compressed, local or fsspec); errors name the file, line and field."""
    files = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not files:
        raise ValueError("no labelled files given")
    return [_labelled(rec) for path in files for rec in read_records(path, objects=True)]


def _labelled(rec: Record) -> LabelledDoc:
    data = rec.data
    for field in ("text", "lang", "label"):
        if not isinstance(data.get(field), str):
            raise rec.error(f"field {field!r} missing or not a string")
    if data["label"] not in LABELS:
        raise rec.error(f"field 'label' is {data['label']!r}, expected 'medical' or 'general'")
    try:
        lang = get_language(data["lang"]).code
    except KeyError as exc:
        raise rec.error(f"field 'lang': {exc.args[0]}") from None
    return LabelledDoc(data["text"], lang, LABELS[data["label"]], str(data.get("source") or ""))


def prf(tp: int, fp: int, fn: int) -> dict[str, float | None]:
    """Precision, recall and F1 (None where undefined)."""
    p = tp / (tp + fp) if tp + fp else None
    r = tp / (tp + fn) if tp + fn else None
    f = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    return {"precision": p, "recall": r, "f1": f}


def confusion(pred: np.ndarray, gold: np.ndarray) -> tuple[int, int, int, int]:
    """``(tp, fp, fn, tn)`` of boolean predictions against boolean gold labels."""
    tp = int(np.sum(pred & gold))
    fp = int(np.sum(pred & ~gold))
    fn = int(np.sum(~pred & gold))
    return tp, fp, fn, int(pred.size - tp - fp - fn)


def _f1_table(distinct: np.ndarray, ratio: np.ndarray, gold: np.ndarray, grid: Grid) -> np.ndarray:
    """F1 at every grid cell, shape (len(counts), len(ratios))."""
    table = np.zeros((len(grid.counts), len(grid.ratios)))
    for i, c in enumerate(grid.counts):
        by_count = distinct >= c
        for j, r in enumerate(grid.ratios):
            tp, fp, fn, _ = confusion(by_count & (ratio >= r), gold)
            table[i, j] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return table


def choose(distinct: np.ndarray, ratio: np.ndarray, gold: np.ndarray, grid: Grid) -> tuple[int, float]:
    """The stable choice: highest neighbourhood-mean F1, then cell F1, then more keywords, then a lower ratio."""
    table = _f1_table(distinct, ratio, gold, grid)
    padded = np.pad(table, 1, mode="edge")  # edge cells are judged on a full 3x3 neighbourhood too
    n_i, n_j = table.shape
    best: tuple[float, float, int, int] | None = None
    for i in range(n_i):
        for j in range(n_j):
            smooth = float(padded[i:i + 3, j:j + 3].mean())
            key = (round(smooth, 9), round(float(table[i, j]), 9), i, -j)
            if best is None or key > best:
                best = key
    assert best is not None
    return grid.counts[best[2]], grid.ratios[-best[3]]


def _scores(distinct: np.ndarray, ratio: np.ndarray, gold: np.ndarray, count: int, min_ratio: float
            ) -> dict[str, Any]:
    tp, fp, fn, tn = confusion((distinct >= count) & (ratio >= min_ratio), gold)
    return {"count": count, "ratio": min_ratio, "tp": tp, "fp": fp, "fn": fn, "tn": tn, **prf(tp, fp, fn)}


def _stratified_folds(gold: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """Fold index per document, each class spread evenly over ``k`` folds (deterministic)."""
    rng = random.Random(seed)
    fold = np.zeros(gold.size, dtype=int)
    for cls in (True, False):
        idx = [int(i) for i in np.flatnonzero(gold == cls)]
        rng.shuffle(idx)
        for n, i in enumerate(idx):
            fold[i] = n % k
    return [fold == f for f in range(k)]


def held_out(distinct: np.ndarray, ratio: np.ndarray, gold: np.ndarray, grid: Grid, k: int, seed: int
             ) -> dict[str, Any]:
    """k-fold cross-validation of the threshold choice: choose on k-1 folds, score the held-out fold."""
    tp = fp = fn = 0
    per_fold = []
    for test in _stratified_folds(gold, k, seed):
        train = ~test
        count, min_ratio = choose(distinct[train], ratio[train], gold[train], grid)
        s = _scores(distinct[test], ratio[test], gold[test], count, min_ratio)
        tp, fp, fn = tp + s["tp"], fp + s["fp"], fn + s["fn"]
        per_fold.append({"count": count, "ratio": min_ratio, "f1": s["f1"]})
    f1s = [f["f1"] or 0.0 for f in per_fold]
    return {"folds": k, "seed": seed, **prf(tp, fp, fn), "f1_mean": float(np.mean(f1s)),
            "f1_std": float(np.std(f1s)), "per_fold": per_fold}


def _by_source(docs: Sequence[LabelledDoc], pred: np.ndarray) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, d in enumerate(docs):
        groups[source_key(d.source)].append(i)
    out = {}
    for key in sorted(groups):
        idx = np.array(groups[key])
        gold = np.array([docs[i].medical for i in idx], dtype=bool)
        tp, fp, fn, tn = confusion(pred[idx], gold)
        out[key] = {"documents": int(idx.size), "medical": int(gold.sum()), "kept": tp + fp,
                    "tp": tp, "fp": fp, "fn": fn, "tn": tn, "accuracy": (tp + tn) / idx.size, **prf(tp, fp, fn)}
    return out


Scanner = Callable[[str], tuple[int, float]]


def calibrate(path_or_paths: str | Path | Iterable[str | Path], grid: Grid | None = None,
              language: str | Sequence[str] | None = None, *, folds: int = 5, seed: int = 13,
              scanner: Callable[[str], Scanner] | None = None) -> dict[str, Any]:
    """Precision/recall/F1 over a threshold grid, per language and per source, with a chosen threshold.

    ``language`` restricts the report to one code (or several); ``scanner(lang)`` returns the function
    scoring a text (default: the shipped keyword list's ``KeywordMatcher.scan``). The report is a
    JSON-serialisable dict; :func:`report_markdown` renders it.
    """
    grid = grid or Grid()
    docs = read_labelled(path_or_paths)
    if language is not None:
        wanted = {get_language(c).code for c in ([language] if isinstance(language, str) else language)}
        docs = [d for d in docs if d.lang in wanted]
    if not docs:
        raise ValueError("no labelled documents for the requested language(s)")
    get_scanner = scanner or (lambda code: matcher_for(code).scan)
    report: dict[str, Any] = {"grid": {"counts": list(grid.counts), "ratios": list(grid.ratios)}, "languages": {}}
    by_lang: dict[str, list[LabelledDoc]] = defaultdict(list)
    for d in docs:
        by_lang[d.lang].append(d)
    for code in sorted(by_lang, key=lambda c: list(STUDY_THRESHOLDS).index(c) if c in STUDY_THRESHOLDS else 99):
        ldocs = by_lang[code]
        scan = get_scanner(code)
        scored = [scan(d.text) for d in ldocs]
        distinct = np.array([s[0] for s in scored])
        ratio = np.array([s[1] for s in scored])
        gold = np.array([d.medical for d in ldocs], dtype=bool)
        table = [_scores(distinct, ratio, gold, c, r) for c in grid.counts for r in grid.ratios]
        count, min_ratio = choose(distinct, ratio, gold, grid)
        chosen = _scores(distinct, ratio, gold, count, min_ratio)
        current = _scores(distinct, ratio, gold, *DEFAULT_THRESHOLDS[code])
        entry: dict[str, Any] = {
            "documents": len(ldocs), "medical": int(gold.sum()),
            "best": max(table, key=lambda s: (s["f1"] or 0.0)),
            "chosen": chosen,
            "default": current,
            "study_thresholds": _scores(distinct, ratio, gold, *STUDY_THRESHOLDS[code]),
            "by_source": _by_source(ldocs, (distinct >= count) & (ratio >= min_ratio)),
            "by_source_default": _by_source(ldocs, (distinct >= current["count"]) & (ratio >= current["ratio"])),
            "grid": table,
        }
        if min(int(gold.sum()), int((~gold).sum())) >= 2:
            k = min(folds, int(gold.sum()), int((~gold).sum()))
            entry["cross_validation"] = held_out(distinct, ratio, gold, grid, k, seed)
            halves = _stratified_folds(gold, 2, seed)
            entry["split_half"] = [
                {"chosen_on": name, **_scores(distinct[~part], ratio[~part], gold[~part],
                                              *choose(distinct[part], ratio[part], gold[part], grid))}
                for name, part in (("A", halves[0]), ("B", halves[1]))]
        report["languages"][code] = entry
    return report


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def report_markdown(report: dict[str, Any]) -> str:
    """Render a calibration report as Markdown tables."""
    lines = ["| lang | docs | medical | chosen (count, ratio) | P | R | F1 | CV F1 (pooled) | split-half F1 "
             "| default (count, ratio) | F1 at default | F1 at study thresholds |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for code, e in report["languages"].items():
        c, d, s = e["chosen"], e["default"], e["study_thresholds"]
        cv = _fmt(e["cross_validation"]["f1"]) if "cross_validation" in e else "–"
        sh = " / ".join(_fmt(h["f1"]) for h in e.get("split_half", [])) or "–"
        lines.append(f"| {code} | {e['documents']} | {e['medical']} | ({c['count']}, {c['ratio']}) "
                     f"| {_fmt(c['precision'])} | {_fmt(c['recall'])} | {_fmt(c['f1'])} | {cv} | {sh} "
                     f"| ({d['count']}, {d['ratio']}) | {_fmt(d['f1'])} | {_fmt(s['f1'])} |")
    lines += ["", "Per source, at the default thresholds:", "",
              "| lang | source | docs | medical | kept | P | R | F1 | accuracy |",
              "|---|---|---|---|---|---|---|---|---|"]
    for code, e in report["languages"].items():
        for src, s in e["by_source_default"].items():
            lines.append(f"| {code} | {src} | {s['documents']} | {s['medical']} | {s['kept']} | {_fmt(s['precision'])} "
                         f"| {_fmt(s['recall'])} | {_fmt(s['f1'])} | {_fmt(s['accuracy'])} |")
    return "\n".join(lines) + "\n"
