"""Bradley–Terry scores from pairwise verdicts, with item-bootstrap intervals and win-rate matrices.

A verdict is ``(item, model_i, model_j, outcome)`` with outcome 1 (i better), 0 (j better) or 0.5
(tie). Ties count half a win for each side. The model ``P(i beats j) = p_i / (p_i + p_j)`` is fitted
with Hunter's (2004) MM iterations; ``prior`` virtual ties per pair keep the fit finite when a model
wins or loses every comparison. Scores are log-strengths centred on 0 (a difference of 1 means
odds of e:1). Intervals resample *items* with replacement, so the verdicts of one item stay together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

Verdict = tuple[str, int, int, float]


def _wins(verdicts: Sequence[Verdict], k: int, prior: float) -> np.ndarray:
    w = np.full((k, k), prior / 2.0)
    np.fill_diagonal(w, 0.0)
    for _, i, j, out in verdicts:
        w[i, j] += out
        w[j, i] += 1.0 - out
    return w


def bradley_terry(verdicts: Sequence[Verdict], k: int, *, prior: float = 1.0, iters: int = 1000,
                  tol: float = 1e-10) -> np.ndarray:
    """Centred log-strengths of ``k`` models."""
    w = _wins(verdicts, k, prior)
    n = w + w.T
    total = w.sum(axis=1)
    p = np.ones(k)
    for _ in range(iters):
        denom = (n / (p[:, None] + p[None, :])).sum(axis=1)
        new = np.where(denom > 0, total / np.where(denom > 0, denom, 1.0), p)
        new /= np.exp(np.mean(np.log(new)))
        if np.max(np.abs(new - p)) < tol:
            p = new
            break
        p = new
    theta = np.log(p)
    return theta - theta.mean()


def bootstrap_bt(verdicts: Sequence[Verdict], k: int, *, reps: int = 1000, seed: int = 0, prior: float = 1.0,
                 level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile intervals (lower, upper) of the log-strengths, resampling items."""
    by_item: dict[str, list[Verdict]] = defaultdict(list)
    for v in verdicts:
        by_item[v[0]].append(v)
    groups = list(by_item.values())
    if not groups:
        nan = np.full(k, np.nan)
        return nan, nan
    rng = np.random.default_rng(seed)
    draws = np.empty((reps, k))
    for b in range(reps):
        picked = rng.integers(0, len(groups), size=len(groups))
        draws[b] = bradley_terry([v for g in picked for v in groups[g]], k, prior=prior, iters=200, tol=1e-8)
    lo, hi = np.quantile(draws, [(1 - level) / 2, 1 - (1 - level) / 2], axis=0)
    return lo, hi


def win_rates(verdicts: Sequence[Verdict], k: int) -> tuple[list[list[float | None]], list[list[int]]]:
    """``rate[i][j]``: share of i's comparisons with j that i won (ties count half); and counts."""
    w = _wins(verdicts, k, 0.0)
    n = w + w.T
    rate = [[round(float(w[i, j] / n[i, j]), 4) if i != j and n[i, j] > 0 else None for j in range(k)]
            for i in range(k)]
    return rate, [[int(round(n[i, j])) for j in range(k)] for i in range(k)]


def ranking(names: Sequence[str], verdicts: Sequence[Verdict], *, reps: int = 1000, seed: int = 0,
            prior: float = 1.0) -> dict[str, Any]:
    """Bradley–Terry ranking table (best first) with 95% intervals, and the win-rate matrix."""
    k = len(names)
    theta = bradley_terry(verdicts, k, prior=prior)
    lo, hi = bootstrap_bt(verdicts, k, reps=reps, seed=seed, prior=prior)
    rate, counts = win_rates(verdicts, k)
    order = sorted(range(k), key=lambda i: -theta[i])
    return {
        "method": f"Bradley-Terry (MM), ties = half wins, {prior} virtual tie(s) per pair, "
                  f"{reps} item-bootstrap replicates (seed {seed}), 95% percentile intervals",
        "ranking": [{"rank": r + 1, "model": names[i], "score": round(float(theta[i]), 4),
                     "ci95": [round(float(lo[i]), 4), round(float(hi[i]), 4)]} for r, i in enumerate(order)],
        "models": list(names),
        "win_rate": rate,
        "comparisons": counts,
    }
