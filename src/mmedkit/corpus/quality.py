"""Quality heuristics per language, in the spirit of Gopher (Rae et al. 2021, table A1) and FineWeb-2.

One datatrove filter step, :class:`QualityFilter`, applies length, symbol, line and repetition rules
with thresholds per language: each rule is one method that passes a document or drops it with a
snake_case reason key (``too_few_words``, ``duplicate_5_grams``; see :mod:`mmedkit.corpus.rules`).

Words are the units of ``mmedkit.languages``' regex segmenters: ``segment_words`` (Unicode words) for
space-delimited languages and ``segment_cjk`` (single characters, Latin words and numbers whole) for
Chinese and Japanese. The dictionary segmenters the registry may use
for zh/ja (jieba, janome) run at 1 MB/s and 20 KB/s, far too slow for a corpus pass. Rules written in
words therefore count characters for zh/ja, and the n-gram sizes of the repetition rules are doubled
for them (Chinese and Japanese words, particles included, are about two characters long). Repetition
is measured on hashed n-grams with NumPy: the share of characters covered by the second and later
occurrences of repeated n-grams, each character counted once (datatrove's and FineWeb's reading of
Gopher's rule).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.writers.disk_base import DiskWriter
from datatrove.utils.text import TERMINAL_PUNCTUATION

from mmedkit.corpus.rules import RuleFilter, Verdict, drop_if
from mmedkit.languages import LANGUAGES, get_language, segment_cjk, segment_words

_BULLETS = ("•", "-", "*", "·", "●", "▪", "◦", "・", "–", "—", "►")
_ELLIPSES = ("...", "…")
_TERMINAL = tuple(TERMINAL_PUNCTUATION) + ('"', "'", "”", "」", "』", ")", "）")
_HASH_MULT = np.uint64(0x9E3779B97F4A7C15)
_HAS_LETTER = re.compile(r"[^\W\d_]")


def units_of(language: str) -> Callable[[str], list[str]]:
    """The fast word segmenter for ``language``: characters for zh/ja, Unicode words otherwise."""
    return segment_words if LANGUAGES[language].space_delimited else segment_cjk

def _stop_words(words: str) -> frozenset[str]:
    """The words, also capitalised (sentence-initial); matching stays a set lookup per unit."""
    return frozenset(w for word in words.split() for w in (word, word.capitalize()))


STOP_WORDS: dict[str, frozenset[str]] = {
    "en": _stop_words("the be to of and that have with"),  # Gopher's list
    "fr": _stop_words("le la les de des du et est un une que qui dans pour en sur au pas"),
    "es": _stop_words("el la los las de del y que en un una es por con para se no"),
    "ru": _stop_words("и в не на что с по как это к он она из у за от о для"),
    "zh": _stop_words("的 了 是 在 和 有 不 这 也 就 与 及 为 中 对 其 后 于 以 并 等 或 时 被 由 从 而 之"),
    "ja": _stop_words("の に は を た が で て と し れ さ な も る か ら う い"),
}
"""Common function words; a document must contain ``min_stop_words`` distinct ones (units for zh/ja).
A word and its capitalised form count as two: two different sentence openings are evidence enough."""


@dataclass(frozen=True)
class QualityThresholds:
    """Limits of one language; ``None`` disables a rule. Word counts are segmenter units."""

    min_words: int | None = 50
    max_words: int | None = 100_000
    min_mean_word_length: float | None = 3.0
    max_mean_word_length: float | None = 10.0
    max_symbol_word_ratio: float | None = 0.1
    """``#`` and ellipses per word."""
    max_bullet_lines: float | None = 0.9
    max_ellipsis_lines: float | None = 0.3
    min_alpha_words: float | None = 0.8
    """Share of words with at least one letter."""
    min_stop_words: int | None = 2
    max_dup_line_frac: float | None = 0.3
    max_dup_para_frac: float | None = 0.3
    max_dup_line_char_frac: float | None = 0.2
    max_dup_para_char_frac: float | None = 0.2
    top_ngrams: tuple[tuple[int, float], ...] = ((2, 0.2), (3, 0.18), (4, 0.16))
    """(n, max share of characters in the most frequent n-gram)."""
    dup_ngrams: tuple[tuple[int, float], ...] = ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11),
                                                 (10, 0.10))
    """(n, max share of characters covered by repeated n-grams)."""
    min_line_punct: float | None = 0.12
    """FineWeb: share of lines ending in terminal punctuation (documents of ``line_rule_min_lines`` lines
    or more: a one-line document cut mid-sentence is left to the other rules)."""
    line_rule_min_lines: int = 3
    max_short_lines: float | None = 0.67
    short_line_chars: int = 30
    max_newlines_per_word: float | None = 0.3
    """FineWeb's list-document rule."""
    stop_words: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def field_names(cls) -> list[str]:
        """Names a configuration may override."""
        return [f.name for f in dataclasses.fields(cls) if f.name != "stop_words"]

    def updated(self, overrides: dict[str, Any], where: str = "quality") -> QualityThresholds:
        """A copy with ``overrides`` applied, each checked against the field's type."""
        known = self.field_names()
        values: dict[str, Any] = {}
        for key, value in overrides.items():
            if key not in known:
                raise ValueError(f"{where}.{key}: unknown quality threshold; known: {', '.join(known)}")
            values[key] = _check_value(key, value, f"{where}.{key}")
        return dataclasses.replace(self, **values)


_INT_FIELDS = {"min_words", "max_words", "min_stop_words", "short_line_chars", "line_rule_min_lines"}
_REQUIRED = {"short_line_chars", "line_rule_min_lines"}


def _check_value(key: str, value: Any, where: str) -> Any:
    """``value`` for the threshold ``key``, converted, or ValueError naming ``where``."""
    if key in ("top_ngrams", "dup_ngrams"):
        try:
            pairs = tuple((int(n), float(r)) for n, r in value)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: expected a list of [n, ratio] pairs, got {value!r}") from None
        if any(n < 1 or not 0 <= r <= 1 for n, r in pairs):
            raise ValueError(f"{where}: n must be >= 1 and ratios in [0, 1], got {value!r}")
        return pairs
    if value is None and key not in _REQUIRED:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{where}: expected a number >= 0{'' if key in _REQUIRED else ' or null'}, got {value!r}")
    if key in _INT_FIELDS:
        if value != int(value):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    return float(value)


def _scaled(pairs: tuple[tuple[int, float], ...], factor: float) -> tuple[tuple[int, float], ...]:
    return tuple((max(2, round(n * factor)), r) for n, r in pairs)


_BASE = QualityThresholds()
_CJK = dict(min_words=80, max_words=200_000, min_mean_word_length=None, max_mean_word_length=None,
            top_ngrams=_scaled(_BASE.top_ngrams, 2.0), dup_ngrams=_scaled(_BASE.dup_ngrams, 2.0),
            short_line_chars=15, max_newlines_per_word=0.2)
DEFAULT_THRESHOLDS: dict[str, QualityThresholds] = {
    "en": dataclasses.replace(_BASE, stop_words=STOP_WORDS["en"]),
    "fr": dataclasses.replace(_BASE, stop_words=STOP_WORDS["fr"]),
    "es": dataclasses.replace(_BASE, stop_words=STOP_WORDS["es"]),
    # Russian words are longer on average (rich inflection).
    "ru": dataclasses.replace(_BASE, max_mean_word_length=12.0, stop_words=STOP_WORDS["ru"]),
    "zh": dataclasses.replace(_BASE, **_CJK, stop_words=STOP_WORDS["zh"]),
    "ja": dataclasses.replace(_BASE, **_CJK, stop_words=STOP_WORDS["ja"]),
}


def thresholds_for(overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, QualityThresholds]:
    """The default thresholds with per-language ``overrides`` (``{"zh": {"min_words": 100}}``) applied."""
    out = dict(DEFAULT_THRESHOLDS)
    for key, values in (overrides or {}).items():
        code = get_language(key).code
        if not isinstance(values, dict):
            raise ValueError(f"quality.thresholds.{key}: expected a mapping of threshold names to values")
        out[code] = out[code].updated(values, where=f"quality.thresholds.{key}")
    return out


def _duplicates(parts: list[str]) -> tuple[int, int]:
    """(number of repeated elements, characters in them), counting every copy after the first."""
    seen: set[str] = set()
    count = chars = 0
    for part in parts:
        if part in seen:
            count += 1
            chars += len(part)
        else:
            seen.add(part)
    return count, chars


def _repeated(units: list[str], text: str, max_frac: float | None, max_char_frac: float | None,
              unit: str) -> Verdict:
    """Gopher's repetition rule for lines or paragraphs: too many repeated units, or too many characters in them."""
    dup, chars = _duplicates(units)
    if max_frac is not None and dup / len(units) > max_frac:
        return False, f"duplicate_{unit}s"
    return drop_if(max_char_frac is not None and chars / len(text) > max_char_frac, f"duplicate_{unit}_chars")


def _ngram_hashes(ids: np.ndarray, n: int) -> np.ndarray:
    """Hashes of the ``len(ids) - n + 1`` n-grams of the unit hashes ``ids`` (uint64, wrapping)."""
    h = ids[: len(ids) - n + 1].copy()
    for k in range(1, n):
        h = h * _HASH_MULT + ids[k: len(ids) - n + 1 + k]
    return h


class RepetitionProfile:
    """Gopher's n-gram repetition measures of one document's units."""

    def __init__(self, units: list[str]) -> None:
        with np.errstate(over="ignore"):
            self.ids = np.fromiter(map(hash, units), dtype=np.int64, count=len(units)).view(np.uint64)
        self.lens = np.fromiter(map(len, units), dtype=np.int64, count=len(units))
        self.total = int(self.lens.sum())
        self._cum = np.concatenate(([0], np.cumsum(self.lens)))

    def top_ngram(self, n: int) -> tuple[int, float]:
        """(occurrences of the most frequent n-gram, characters in all of them / characters of all units)."""
        if len(self.ids) < n or not self.total:
            return 0, 0.0
        with np.errstate(over="ignore"):
            grams = _ngram_hashes(self.ids, n)
        ordered = np.sort(grams)
        bounds = np.concatenate(([0], np.flatnonzero(ordered[1:] != ordered[:-1]) + 1, [len(ordered)]))
        counts = np.diff(bounds)
        top = int(counts.max())
        if top < 2:
            return top, 0.0
        # Ties between n-grams of different lengths: take the longest (the result must not depend on hashes).
        values = ordered[bounds[:-1][counts == top]]
        tied = grams == values[0] if len(values) == 1 else np.isin(grams, values)
        longest = int(self.windows(n)[tied].max())
        return top, float(top * longest) / self.total

    def top_ngram_frac(self, n: int) -> float:
        """Characters in all occurrences of the most frequent n-gram / characters of all units."""
        return self.top_ngram(n)[1]

    def windows(self, n: int) -> np.ndarray:
        """Characters of each n-gram (by start position)."""
        return self._cum[n:] - self._cum[:-n]

    def dup_ngram_frac(self, n: int) -> float:
        """Characters covered by later occurrences of repeated n-grams / characters of all units."""
        if len(self.ids) < n or not self.total:
            return 0.0
        with np.errstate(over="ignore"):
            grams = _ngram_hashes(self.ids, n)
        order = np.argsort(grams, kind="stable")  # equal n-grams stay in text order
        ordered = grams[order]
        starts = order[1:][ordered[1:] == ordered[:-1]]  # every occurrence after the first
        if not len(starts):
            return 0.0
        size = len(self.ids) + 1
        delta = np.bincount(starts, minlength=size) - np.bincount(starts + n, minlength=size)
        covered = np.cumsum(delta[:-1]) > 0
        return float(self.lens[covered].sum()) / self.total


class _Text:
    """What the rules measure in one text, each measure computed once, on first use."""

    def __init__(self, text: str, language: str, limits: QualityThresholds) -> None:
        self.text, self.language, self.limits = text, language, limits

    @cached_property
    def units(self) -> list[str]:
        return units_of(self.language)(self.text)

    @cached_property
    def lines(self) -> list[str]:
        """Non-blank lines, stripped."""
        return [line for line in (ln.strip() for ln in self.text.split("\n")) if line]

    @cached_property
    def paragraphs(self) -> list[str]:
        return [p.strip() for p in self.text.split("\n\n") if p.strip()]

    @cached_property
    def profile(self) -> RepetitionProfile:
        return RepetitionProfile(self.units)

    def share_of_lines(self, test: Callable[[str], bool]) -> float:
        return sum(map(test, self.lines)) / len(self.lines)


class QualityFilter(RuleFilter):
    """Drop documents that break their language's quality heuristics (see :class:`QualityThresholds`).

    Reads the language from ``doc.metadata[language_key]``; documents of a language without thresholds
    are dropped as ``"unsupported_language"``. Counts ``<code>_kept`` / ``<code>_dropped`` per language.
    Each rule below is skipped where its threshold is ``None``.
    """

    name = "🧹 Quality heuristics"
    rules = ("word_count", "mean_word_length", "symbols", "alphabetic_words", "stop_words", "bullet_lines",
             "ellipsis_lines", "line_punctuation", "short_lines", "list_like", "duplicate_paragraphs",
             "duplicate_lines", "top_ngrams", "duplicate_ngrams")

    def __init__(self, thresholds: dict[str, QualityThresholds] | None = None, language_key: str = "language",
                 exclusion_writer: DiskWriter | None = None) -> None:
        super().__init__(exclusion_writer)
        self.thresholds = dict(thresholds) if thresholds is not None else dict(DEFAULT_THRESHOLDS)
        self.language_key = language_key

    def filter(self, doc: Document) -> Verdict:
        """Decide whether ``doc`` is kept."""
        code = doc.metadata.get(self.language_key)
        if not isinstance(code, str) or code not in self.thresholds:
            return False, "unsupported_language"
        verdict = self.check(doc.text or "", code)
        self.stat_update(f"{code}_kept" if verdict is True else f"{code}_dropped")
        return verdict

    def check(self, text: str, language: str) -> Verdict:
        """``True``, or ``(False, reason_key)`` of the first rule ``text`` breaks in ``language``."""
        return self.apply_rules(_Text(text, language, self.thresholds[language]))

    # --- words -------------------------------------------------------------------------------------------
    def word_count(self, t: _Text) -> Verdict:
        n, lim = len(t.units), t.limits
        if not n or not t.lines or (lim.min_words is not None and n < lim.min_words):
            return False, "too_few_words"
        return drop_if(lim.max_words is not None and n > lim.max_words, "too_many_words")

    def mean_word_length(self, t: _Text) -> Verdict:
        mean, lim = sum(map(len, t.units)) / len(t.units), t.limits
        if lim.min_mean_word_length is not None and mean < lim.min_mean_word_length:
            return False, "short_mean_word_length"
        return drop_if(lim.max_mean_word_length is not None and mean > lim.max_mean_word_length,
                       "long_mean_word_length")

    def symbols(self, t: _Text) -> Verdict:
        if (limit := t.limits.max_symbol_word_ratio) is None:
            return True
        if t.text.count("#") / len(t.units) > limit:
            return False, "too_many_hash_symbols"
        return drop_if((t.text.count("...") + t.text.count("…")) / len(t.units) > limit, "too_many_ellipses")

    def alphabetic_words(self, t: _Text) -> Verdict:
        if (limit := t.limits.min_alpha_words) is None:
            return True
        # Units made only of letters are a lower bound, exact whenever it already passes.
        alpha = sum(map(str.isalpha, t.units))
        if alpha / len(t.units) < limit:
            alpha = sum(map(bool, map(_HAS_LETTER.search, t.units)))
        return drop_if(alpha / len(t.units) < limit, "too_few_alphabetic_words")

    def stop_words(self, t: _Text) -> Verdict:
        if not (least := t.limits.min_stop_words):
            return True
        return drop_if(len(t.limits.stop_words.intersection(t.units)) < least, "too_few_stop_words")

    # --- lines -------------------------------------------------------------------------------------------
    def bullet_lines(self, t: _Text) -> Verdict:
        limit = t.limits.max_bullet_lines
        return drop_if(limit is not None and t.share_of_lines(lambda ln: ln.startswith(_BULLETS)) > limit,
                       "too_many_bullet_lines")

    def ellipsis_lines(self, t: _Text) -> Verdict:
        limit = t.limits.max_ellipsis_lines
        return drop_if(limit is not None and t.share_of_lines(lambda ln: ln.endswith(_ELLIPSES)) > limit,
                       "too_many_ellipsis_lines")

    def line_punctuation(self, t: _Text) -> Verdict:
        lim = t.limits
        if lim.min_line_punct is None or len(t.lines) < lim.line_rule_min_lines:
            return True
        return drop_if(t.share_of_lines(lambda ln: ln.endswith(_TERMINAL)) < lim.min_line_punct,
                       "few_punctuated_lines")

    def short_lines(self, t: _Text) -> Verdict:
        lim = t.limits
        return drop_if(lim.max_short_lines is not None
                       and t.share_of_lines(lambda ln: len(ln) <= lim.short_line_chars) > lim.max_short_lines,
                       "too_many_short_lines")

    def list_like(self, t: _Text) -> Verdict:
        limit = t.limits.max_newlines_per_word
        return drop_if(limit is not None and t.text.count("\n") / len(t.units) > limit, "list_like")

    # --- repetition --------------------------------------------------------------------------------------
    def duplicate_paragraphs(self, t: _Text) -> Verdict:
        lim = t.limits
        return _repeated(t.paragraphs, t.text, lim.max_dup_para_frac, lim.max_dup_para_char_frac, "paragraph")

    def duplicate_lines(self, t: _Text) -> Verdict:
        lim = t.limits
        return _repeated(t.lines, t.text, lim.max_dup_line_frac, lim.max_dup_line_char_frac, "line")

    def top_ngrams(self, t: _Text) -> Verdict:
        most = None  # occurrences of the most frequent shorter n-gram
        for n, ratio in sorted(t.limits.top_ngrams):
            # An n-gram occurs at most as often as its prefix: skip the count when even that bound passes.
            if most is not None and (n > len(t.units)
                                     or most * int(t.profile.windows(n).max()) <= ratio * t.profile.total):
                continue
            most, frac = t.profile.top_ngram(n)
            if frac > ratio:
                return False, f"top_{n}_gram"
        return True

    def duplicate_ngrams(self, t: _Text) -> Verdict:
        if not t.limits.dup_ngrams:
            return True
        (n0, r0), *longer = sorted(t.limits.dup_ngrams)
        frac0 = t.profile.dup_ngram_frac(n0)
        if frac0 > r0:
            return False, f"duplicate_{n0}_grams"
        # Text covered by repeated n-grams is covered by repeated m-grams for any m < n, so when the
        # smallest n is under every limit, the longer n-grams are too.
        if frac0 > min(r for _, r in t.limits.dup_ngrams):
            for n, ratio in longer:
                if t.profile.dup_ngram_frac(n) > ratio:
                    return False, f"duplicate_{n}_grams"
        return True
