"""The study's rationale metrics, reproduced with its own libraries, for comparison only.

MMedBench's published script (``metrics/rationale_similarity.py`` of the MMedLM repository) reports:

* "BLEU-1": NLTK ``sentence_bleu`` with its default weights (0.25, 0.25, 0.25, 0.25), i.e. cumulative
  **BLEU-4**, smoothing ``method1``; tokens from NLTK ``word_tokenize`` (en, es, fr, ru), ``jieba.cut``
  (zh) or janome surfaces (ja), punctuation and spaces included.
* "ROUGE-1": the ``rouge`` package's ``rouge-l`` F score (summary-level union LCS over "."-split
  sentences with unique-word counts), on raw text (en, es, fr, ru) or space-joined segments (zh, ja).
* BERTScore F1 with bert-base-multilingual-cased, the model reloaded for every sample (see
  :mod:`mmedkit.bench.rationale.bertscore` for the batched equivalent).

Here they are recomputed with ``nltk`` and ``rouge`` (``pip install nltk rouge``) and reported as
``study_bleu`` and ``study_rouge``, in percent. One difference remains: NLTK's Punkt sentence
splitter needs the ``punkt_tab`` data package; without it sentences are split on ``.!?`` followed by
a space and then word-tokenised by NLTK's Treebank tokenizer, and :func:`study_tokenizer_name` says so.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib import metadata

from mmedkit.languages import get_language, segment_ja, segment_zh

STUDY_KEYS = ("study_bleu", "study_rouge")
DEFINITIONS = {
    "study_bleu": "the study's 'BLEU-1': NLTK sentence_bleu, default weights = cumulative BLEU-4, smoothing method1",
    "study_rouge": "the study's 'ROUGE-1': rouge package (pltrust) 'rouge-l' F, summary-level LCS",
}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def study_available() -> str | None:
    """None when the study's libraries are importable, else what to install."""
    missing = [m for m in ("nltk", "rouge") if not _importable(m)]
    return f"pip install {' '.join(missing)}" if missing else None


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


@cache
def _has_punkt() -> bool:
    import nltk

    try:
        nltk.word_tokenize("A test.")
    except LookupError:
        return False
    return True


def study_tokenizer_name(language: str) -> str:
    """The tokenizer the study variants use for ``language`` (recorded in results)."""
    code = get_language(language).code
    if code == "zh":
        return segment_zh.name + " (all tokens)"
    if code == "ja":
        return segment_ja.name + " (all tokens)"
    how = "Punkt" if _has_punkt() else "regex sentence split, punkt_tab data not installed"
    return f"nltk {metadata.version('nltk')} word_tokenize ({how})"


def study_tokens(text: str, language: str) -> list[str]:
    """Tokens as the study's script makes them (punctuation kept)."""
    code = get_language(language).code
    if code == "zh":
        return segment_zh.raw(text)
    if code == "ja":
        return segment_ja.raw(text)
    import nltk

    if _has_punkt():
        return nltk.word_tokenize(text)
    return [t for s in _SENTENCE_END.split(text) if s for t in nltk.word_tokenize(s, preserve_line=True)]


@contextmanager
def _recursion_limit(limit: int) -> Iterator[None]:
    """The rouge package reconstructs LCS recursively; the study raised the limit to 10000 too."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def study_scores(hypothesis: str, reference: str, language: str) -> dict[str, float]:
    """``study_bleu`` and ``study_rouge`` (0-100) of one rationale, as the study computed them."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
    from rouge import Rouge

    hyp_tok, ref_tok = study_tokens(hypothesis, language), study_tokens(reference, language)
    bleu = 0.0
    if hyp_tok and ref_tok:
        bleu = float(sentence_bleu([ref_tok], hyp_tok, smoothing_function=SmoothingFunction().method1))
    spaced = get_language(language).code in ("zh", "ja")
    hyp = " ".join(hyp_tok) if spaced else hypothesis
    ref = " ".join(ref_tok) if spaced else reference
    rouge = 0.0
    if hyp.strip(" .") and ref.strip(" ."):
        with _recursion_limit(10_000 + 4 * (len(hyp) + len(ref))):
            rouge = float(Rouge().get_scores(hyp, ref)[0]["rouge-l"]["f"])
    return {"study_bleu": 100.0 * bleu, "study_rouge": 100.0 * rouge}
