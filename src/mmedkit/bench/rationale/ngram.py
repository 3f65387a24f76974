"""BLEU-1..4 and ROUGE-1/2/L (F1) on token lists: language-agnostic, nothing dropped.

Scores are in percent (0-100). Definitions:

* ``bleu-N``: sentence BLEU with n-gram orders 1..N (geometric mean of clipped n-gram precisions
  times the brevity penalty; Papineni et al. 2002). Orders the hypothesis is too short for are left
  out (sacrebleu's ``effective_order``) and a zero count is smoothed with ``exp`` by default
  (sacrebleu's sentence-level default; Chen & Cherry 2014, method 3); no word in common scores 0.
  ``bleu-1`` is unigram BLEU.
* ``rouge-N``: F1 of clipped n-gram overlap (Lin 2004), as rouge-score computes it.
* ``rouge-L``: F1 of the longest common subsequence, sentence-level (rouge-score's ``rougeL``).

The caller supplies tokens (see :func:`mmedkit.bench.rationale.text.tokenize`), so the numbers
equal sacrebleu (``tokenize="none"``) and rouge-score given the same tokens.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence

SMOOTHING = ("exp", "floor", "add-k", "none")
BLEU_ORDERS = (1, 2, 3, 4)
ROUGE_NAMES = ("rouge-1", "rouge-2", "rouge-L")


def ngrams(tokens: Sequence[Hashable], n: int) -> Counter[tuple[Hashable, ...]]:
    """Counts of the ``n``-grams of ``tokens``."""
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def bleu(hyp: Sequence[str], ref: Sequence[str], max_order: int = 4, *, smoothing: str = "exp",
         k: float | None = None, effective_order: bool = True) -> float:
    """Sentence BLEU of ``hyp`` against one reference with n-gram orders 1..``max_order`` (0-100).

    ``smoothing``: ``exp`` (the i-th zero-count order gets 1/2^i of a match), ``floor`` (a zero count
    becomes ``k``, default 0.1), ``add-k`` (``k``, default 1, added to counts and totals of orders >= 2),
    ``none``.
    """
    if smoothing not in SMOOTHING:
        raise ValueError(f"unknown BLEU smoothing {smoothing!r}; expected one of {', '.join(SMOOTHING)}")
    k = (0.1 if smoothing == "floor" else 1.0) if k is None else k
    if max_order < 1:
        raise ValueError("max_order must be >= 1")
    if not hyp or not ref:
        return 0.0
    log_sum, used, halvings = 0.0, 0, 1.0
    for n in range(1, max_order + 1):
        h, r = ngrams(hyp, n), ngrams(ref, n)
        correct = float(sum(min(c, r[g]) for g, c in h.items()))
        if n == 1 and correct == 0:
            return 0.0  # no word in common: no smoothing gives credit
        total = float(max(len(hyp) - n + 1, 0))
        if smoothing == "add-k" and n > 1:
            correct, total = correct + k, total + k
        if total == 0:
            if effective_order:
                break
            return 0.0
        used += 1
        if correct > 0:
            p = correct / total
        elif smoothing == "exp":
            halvings *= 2
            p = 1.0 / (halvings * total)
        elif smoothing == "floor":
            p = k / total
        else:
            return 0.0
        log_sum += math.log(p)
    if used == 0:
        return 0.0
    order = used if effective_order else max_order
    bp = 1.0 if len(hyp) >= len(ref) else math.exp(1 - len(ref) / len(hyp))
    return 100.0 * bp * math.exp(log_sum / order)


def _f1(overlap: int, n_hyp: int, n_ref: int) -> float:
    p = overlap / n_hyp if n_hyp else 0.0
    r = overlap / n_ref if n_ref else 0.0
    return 100.0 * 2 * p * r / (p + r) if p + r > 0 else 0.0


def rouge_n(hyp: Sequence[str], ref: Sequence[str], n: int) -> float:
    """ROUGE-N F1 (0-100): clipped n-gram overlap against the reference."""
    h, r = ngrams(hyp, n), ngrams(ref, n)
    return _f1(sum((h & r).values()), sum(h.values()), sum(r.values()))


def lcs_length(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Length of the longest common subsequence, with the bit-parallel algorithm of Hyyrö (2004).

    Each token of ``a`` is a bit; one pass over ``b`` with big-integer arithmetic costs
    O(len(b) * len(a) / word size), which keeps long rationales cheap in pure Python.
    """
    if not a or not b:
        return 0
    masks: dict[Hashable, int] = {}
    for i, tok in enumerate(a):
        masks[tok] = masks.get(tok, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for tok in b:
        u = v & masks.get(tok, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def rouge_l(hyp: Sequence[str], ref: Sequence[str]) -> float:
    """ROUGE-L F1 (0-100) from the longest common subsequence."""
    return _f1(lcs_length(ref, hyp), len(hyp), len(ref))


def text_metrics(hyp: Sequence[str], ref: Sequence[str], *, smoothing: str = "exp") -> dict[str, float]:
    """``bleu-1`` .. ``bleu-4``, ``rouge-1``, ``rouge-2``, ``rouge-L`` of one hypothesis (0-100)."""
    out = {f"bleu-{n}": bleu(hyp, ref, n, smoothing=smoothing) for n in BLEU_ORDERS}
    out["rouge-1"] = rouge_n(hyp, ref, 1)
    out["rouge-2"] = rouge_n(hyp, ref, 2)
    out["rouge-L"] = rouge_l(hyp, ref)
    return out
