"""Accuracy with exact-set matching, per language / subject, with bootstrap confidence intervals."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Scored:
    """The outcome of one item: its language, subject, and whether the answer set was exactly right."""

    language: str
    correct: bool
    invalid: bool = False
    subject: str | None = None


def bootstrap_ci(values: Sequence[bool], *, reps: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of 0/1 ``values`` (in %)."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, arr.size, size=(reps, arr.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return (round(100 * float(lo), 2), round(100 * float(hi), 2))


def stratified_macro_ci(groups: dict[str, Sequence[float]], *, reps: int = 1000, seed: int = 0,
                        level: float = 0.95) -> tuple[float, float]:
    """Bootstrap interval of the mean over groups of per-group means (accuracy, or paired differences),
    resampling within each group."""
    rng = np.random.default_rng(seed)
    per_group = []
    for vals in groups.values():
        arr = np.asarray(vals, dtype=float)
        if arr.size:
            per_group.append(arr[rng.integers(0, arr.size, size=(reps, arr.size))].mean(axis=1))
    if not per_group:
        return (float("nan"), float("nan"))
    macro = np.mean(per_group, axis=0)
    lo, hi = np.quantile(macro, [(1 - level) / 2, 1 - (1 - level) / 2])
    return (round(100 * float(lo), 2), round(100 * float(hi), 2))


def paired_diff_ci(groups: dict[str, tuple[Sequence[bool], Sequence[bool]]], *, reps: int = 1000, seed: int = 0,
                   level: float = 0.95) -> tuple[float, float]:
    """Paired bootstrap interval (in points) of the mean over groups of accuracy(a) - accuracy(b).

    Each group holds two outcome lists over the same items (in the same order); items are resampled
    together within each group, so the interval reflects the difference on the same questions. One group
    gives a per-language interval, several a macro-average one.
    """
    diffs = {key: np.asarray(a, dtype=float) - np.asarray(b, dtype=float) for key, (a, b) in groups.items()}
    return stratified_macro_ci(diffs, reps=reps, seed=seed, level=level)


def _block(outcomes: Sequence[Scored], seed: int) -> dict[str, Any]:
    correct = [o.correct for o in outcomes]
    n = len(correct)
    return {
        "n": n,
        "correct": int(sum(correct)),
        "accuracy": round(100 * sum(correct) / n, 2) if n else None,
        "ci95": list(bootstrap_ci(correct, seed=seed)),
        "invalid": int(sum(o.invalid for o in outcomes)),
        "invalid_rate": round(100 * sum(o.invalid for o in outcomes) / n, 2) if n else None,
    }


def summarize(outcomes: Sequence[Scored], *, seed: int = 0) -> dict[str, Any]:
    """Metrics per language, per subject, and overall (macro = mean over languages, as the study
    reports, and micro = over all items)."""
    by_lang: dict[str, list[Scored]] = defaultdict(list)
    by_subject: dict[str, list[Scored]] = defaultdict(list)
    for o in outcomes:
        by_lang[o.language].append(o)
        if o.subject:
            by_subject[f"{o.language}/{o.subject}"].append(o)
    per_language = {lang: _block(v, seed) for lang, v in by_lang.items()}
    accs = [b["accuracy"] for b in per_language.values() if b["accuracy"] is not None]
    micro = _block(outcomes, seed)
    return {
        "per_language": per_language,
        "overall": {
            "macro_accuracy": round(float(np.mean(accs)), 2) if accs else None,
            "macro_ci95": list(stratified_macro_ci({k: [o.correct for o in v] for k, v in by_lang.items()},
                                                   seed=seed)),
            "micro_accuracy": micro["accuracy"],
            "micro_ci95": micro["ci95"],
            "n": micro["n"],
            "invalid_rate": micro["invalid_rate"],
        },
        "per_subject": {k: _block(v, seed) for k, v in sorted(by_subject.items())},
    }
