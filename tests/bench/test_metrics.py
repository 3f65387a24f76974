"""Exact-set accuracy, macro/micro averages and bootstrap intervals."""

from __future__ import annotations

import pytest

from mmedkit.bench.engine import _record
from mmedkit.bench.loader import load_benchmark
from mmedkit.bench.metrics import Scored, bootstrap_ci, summarize


def test_multi_answer_is_scored_as_exact_set() -> None:
    item = next(it for it in load_benchmark("demo", langs="fr") if len(it.answer) >= 2)
    gold = sorted(item.answer)
    assert _record(item, "p", pred=frozenset(gold), invalid=False, rule="x", extra={})["correct"]
    assert not _record(item, "p", pred=frozenset(gold[:1]), invalid=False, rule="x", extra={})["correct"]
    assert not _record(item, "p", pred=frozenset(item.options), invalid=False, rule="x", extra={})["correct"]
    assert not _record(item, "p", pred=None, invalid=True, rule="none", extra={})["correct"]


def test_summarize_macro_micro_invalid_and_subjects() -> None:
    outcomes = ([Scored("en", True, subject="cardiology")] * 9 + [Scored("en", False, invalid=True)]
                + [Scored("zh", True)] * 1 + [Scored("zh", False)] * 1)
    m = summarize(outcomes)
    assert m["per_language"]["en"]["accuracy"] == 90.0 and m["per_language"]["zh"]["accuracy"] == 50.0
    assert m["overall"]["macro_accuracy"] == 70.0  # mean over languages, as the study reports
    assert m["overall"]["micro_accuracy"] == pytest.approx(100 * 10 / 12, abs=0.01)
    assert m["per_language"]["en"]["invalid_rate"] == 10.0 and m["overall"]["invalid_rate"] == pytest.approx(8.33)
    assert m["per_subject"]["en/cardiology"]["n"] == 9
    lo, hi = m["overall"]["macro_ci95"]
    assert lo <= 70.0 <= hi


def test_bootstrap_ci_brackets_the_mean_and_narrows_with_n() -> None:
    small = [True, False] * 10
    large = [True, False] * 500
    lo_s, hi_s = bootstrap_ci(small, seed=1)
    lo_l, hi_l = bootstrap_ci(large, seed=1)
    assert lo_s < 50 < hi_s and lo_l < 50 < hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 4
    assert bootstrap_ci(small, seed=1) == (lo_s, hi_s)  # seeded: reproducible
    assert bootstrap_ci([True] * 5) == (100.0, 100.0)
