"""One language's view of a message: which red-flag phrasings occur, and which of them a negation cue
of this language governs.

Text and patterns are normalized alike (``normalize_loose``). A negation cue governs a match when it
stands at most ``window`` words (characters for Chinese and Japanese) before it in the same clause
(``before``), or right behind it (``after``: Russian ``боли в груди нет``, Japanese ``胸の痛みはない``).
Other matches and ``joins`` (``or``, ``ni``, ``и``, ``和``) between the cue and the match do not count,
so a cue reaches every symptom of a list (``pas de douleur ni de fièvre``, ``боли и одышки нет``).
A question answered by a negative (``Chest pain? None.``, ``Боль в груди? Нет.``) is negated too
(``answers``). Clauses end at punctuation and at ``breaks`` words (``but``, ``mais``, ``但是``);
``pseudo`` phrases (``not sure``) and ``fixed`` phrasings, which carry their own negation
(``can't breathe``), are never read as cues.

Phrasings come in four kinds: ``terms``; ``fixed``; ``names`` of a condition (``stroke``, ``инсульт``),
which do not count in a question (``does high blood pressure raise the risk of stroke?``); and ``near``
pairs, two patterns within ``near_window`` words (characters) of each other in one clause, in either
order and with no negation cue between them, so ``my chest feels so heavy`` and ``a heavy weight on my
chest`` are one line of data (body part, sensation) instead of a list of sentences.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from mmedkit.text import CJK, CYRILLIC, script_re

PUNCT = r"[.;:!?。；：！？\n…]"
"""Characters that end a sentence."""
COMMAS = r"[,，]"
CONTEXT_KINDS = ("history", "hypothetical", "education", "resolved", "present")
"""Context cues of a language file: remote past, hypothetical, educational, resolved since (``and now she's
fine``), and (overriding them) present."""


def alternation(patterns: Sequence[re.Pattern[str]], fold: bool = False) -> re.Pattern[str] | None:
    """One pattern matching any of ``patterns`` (None for none); ``fold``: they are case-folded phrasings."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p.pattern})" for p in patterns), 0 if fold else re.IGNORECASE)


def mask(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """``text`` with the given spans blanked out (same length, so offsets still hold)."""
    chars = list(text)
    for s, e in spans:
        chars[s:e] = "_" * (e - s)
    return "".join(chars)


@dataclass(frozen=True)
class Hit:
    """A phrasing of a concept found in a message."""

    concept: str
    start: int
    end: int
    text: str
    kind: str
    """``terms``, ``fixed`` (never negated by a cue), ``names`` or ``near``."""


@dataclass(frozen=True)
class Scan:
    """One language's view of a normalized message (see :meth:`LanguagePack.scan`)."""

    masked: str
    bounds: list[tuple[int, int]]
    hits: list[Hit]


_MASKED = re.compile(r"^_+$")
_WORD_CHAR = re.compile(r"\w")
_CLAUSE_END = re.compile(f"{PUNCT}|{COMMAS}")
_CJK = script_re(CJK)
_CYR = script_re(CYRILLIC)


@dataclass
class LanguagePack:
    """Phrasings, negation and context cues, and texts of one language."""

    code: str
    words: bool
    """True for space-delimited languages: windows count words, patterns get word boundaries."""
    window: int
    before: re.Pattern[str] | None
    after: tuple[re.Pattern[str], ...]
    pseudo: tuple[re.Pattern[str], ...]
    breaks: tuple[re.Pattern[str], ...]
    terms: dict[str, tuple[re.Pattern[str], ...]]
    fixed: dict[str, tuple[re.Pattern[str], ...]]
    texts: dict[str, str]
    advice: dict[str, str]
    dose: re.Pattern[str] | None
    joins: re.Pattern[str] | None = None
    answers: re.Pattern[str] | None = None
    names: dict[str, tuple[re.Pattern[str], ...]] = field(default_factory=dict)
    near: dict[str, tuple[tuple[re.Pattern[str], re.Pattern[str]], ...]] = field(default_factory=dict)
    near_window: int = 5
    context: dict[str, re.Pattern[str] | None] = field(default_factory=dict)
    review: dict[str, Any] = field(default_factory=dict)
    homophones: dict[str, str] = field(default_factory=dict)
    """Characters typed for a same-sounding one (Chinese ``历`` for ``厉``), read as the intended one."""

    @cached_property
    def script(self) -> str:
        """``latin``, ``cyrillic`` or ``cjk``: the script of the pack's texts."""
        title = self.texts.get("emergency_title", "")
        if _CJK.search(title):
            return "cjk"
        return "cyrillic" if _CYR.search(title) else "latin"

    def bounds(self, t: str) -> list[tuple[int, int]]:
        """Where clauses of ``t`` end: punctuation and commas (not 、: Chinese and Japanese list symptoms
        with it), and this language's ``breaks`` words."""
        return [m.span() for m in _CLAUSE_END.finditer(t)] + [m.span() for p in self.breaks
                                                              for m in self.finditer(p, t)]

    def patterns(self) -> Iterable[re.Pattern[str]]:
        """Every phrasing pattern of the pack (for the spelling lexicon)."""
        for group in (self.terms, self.fixed, self.names):
            for pats in group.values():
                yield from pats
        for pairs in self.near.values():
            for pair in pairs:
                yield from pair

    def scan(self, t: str) -> Scan:
        """Matches of this language's phrasings in normalized text ``t``, and ``t`` masked for negation cues."""
        hits = [Hit(name, *m.span(), m.group(), kind)
                for kind, group in (("fixed", self.fixed), ("terms", self.terms), ("names", self.names))
                for name, pats in group.items() for p in pats for m in self.finditer(p, t)]
        if self.near:
            ends = [m.end() for m in _CLAUSE_END.finditer(t)]  # punctuation only: "face suddenly drooping"
            hits += [hit for name, pairs in self.near.items() for a, b in pairs
                     for hit in self._near(name, a, b, t, ends)]
        # Negation cues are looked for with every match and every pseudo-negation blanked out:
        # "can't breathe" lends its "can't" to nothing else.
        masked = mask(t, [(h.start, h.end) for h in hits]
                      + [m.span() for p in self.pseudo for m in self.finditer(p, t)])
        return Scan(masked, self.bounds(masked), hits)

    def finditer(self, p: re.Pattern[str], t: str) -> Iterator[re.Match[str]]:
        """Matches of phrasing ``p`` in ``t`` that start a word (phrasings carry no left boundary: see
        :meth:`mmedkit.serve.safety.data.Source.regex`)."""
        pos = 0
        while (m := p.search(t, pos)) is not None:
            start = m.start()
            if self.words and start > 0 and _WORD_CHAR.match(t, start - 1):
                pos = start + 1
                continue
            yield m
            pos = max(m.end(), start + 1)

    def _near(self, name: str, a: re.Pattern[str], b: re.Pattern[str], t: str, ends: list[int]) -> Iterator[Hit]:
        """``a`` and ``b`` close together in one clause, in either order, without a negation cue between."""
        bs = [m.span() for m in self.finditer(b, t)]
        if not bs:
            return
        for ma in self.finditer(a, t):
            for bs_, be in bs:
                (s1, e1), (s2, e2) = sorted([ma.span(), (bs_, be)])
                if s2 < e1:
                    continue
                between = t[e1:s2]
                gap = len(between.split()) if self.words else len(between)
                if gap > self.near_window or any(s1 < e <= s2 for e in ends):
                    continue
                if self.before is not None and (self.before.search(between.strip())
                                                or any(self.before.fullmatch(w) for w in between.split())):
                    continue
                yield Hit(name, s1, e2, t[s1:e2], "near")
                break

    def _filler(self, segment: str) -> str:
        """``segment`` without other matches and list joins (they do not count in a negation window)."""
        if self.words:
            return " ".join(w for w in segment.split()
                            if not _MASKED.match(w) and not (self.joins and self.joins.fullmatch(w)))
        segment = segment.replace("_", "")
        return self.joins.sub("", segment) if self.joins is not None else segment

    def negated(self, scan: Scan, start: int, end: int) -> bool:
        """Whether a negation cue of this language governs ``t[start:end]``."""
        masked, bounds = scan.masked, scan.bounds
        clause_start = max((e for s, e in bounds if e <= start), default=0)
        clause_end = min((s for s, e in bounds if s >= end), default=len(masked))
        before, after = masked[clause_start:start], masked[end:clause_end]
        if self.before is not None:
            if self.words:
                windows = (" ".join(before.split()[-self.window:]),
                           " ".join(self._filler(before).split()[-self.window:]))
            else:
                windows = (before[-self.window:], self._filler(before)[-self.window:])
            if any(self.before.search(w) for w in windows):
                return True
        if self.answers is not None and clause_end < len(masked) and masked[clause_end] in "?？" \
                and self.answers.match(masked[clause_end + 1:].lstrip()):
            return True
        if not self.after:
            return False
        if self.words:
            tail = " " + " ".join(self._filler(after).split()[:self.window])
            return any(p.search(tail) for p in self.after)
        return any(p.match(self._filler(after)[:self.window]) or p.match(after[:self.window]) for p in self.after)

    def text(self, name: str) -> str:
        """One of the pack's texts (``disclaimer``, ``system_prompt``, ...)."""
        return self.texts[name]
