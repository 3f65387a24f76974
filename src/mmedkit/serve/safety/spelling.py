"""Common misspellings of red-flag words (``unconcious``, ``siezure``, ``shortnes of breth``, ``инсулт``).

The lexicon is every word the phrasing patterns can match, read off the patterns themselves (the stdlib
regex parser expands optional parts and alternatives; ``\\w*`` endings make stems such as ``suicid``).
A message word of five letters or more is replaced by the lexicon word (or stem plus the word's own
ending) within one edit (two from ten letters; transpositions count once); a four-letter word only by a
lexicon word it lacks one letter of (``fevr``, ``грди``) or has two letters swapped in. Real words are
never replaced: English, French and Spanish ones by pyspellchecker's frequency lists, Russian ones by
pymorphy3's dictionary, which knows every inflected form (pyspellchecker's Russian list is too small:
``запыхаюсь`` would become ``задыхаюсь``); so ``painted`` never becomes ``fainted``. Distances are
rapidfuzz's (Damerau-Levenshtein, Indel). Chinese and Japanese are left as typed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from functools import lru_cache
from itertools import product
from re import _constants as C  # noqa: N812 - the stdlib parser's opcodes
from re import _parser as sre_parse

from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein, Indel

WILD = "\x00"
_CAP = 64
_WORD = re.compile(r"[^\W\d_]{4,}")
_TOKEN = re.compile(rf"[^\W\d_{WILD}]+{WILD}?|{WILD}")
DICTIONARY_LANGUAGES = ("en", "fr", "es")
_CYRILLIC = re.compile("[\u0400-\u04ff]")


def expand(pattern: str) -> list[str]:
    """Strings ``pattern`` matches, with WILD where it matches open-ended text (at most a few dozen)."""
    try:
        return _expand(sre_parse.parse(pattern, re.IGNORECASE))
    except (re.error, RecursionError):
        return []


def _expand(seq: Iterable[tuple[object, object]]) -> list[str]:
    out = [""]
    for op, av in seq:
        out = [a + b for a, b in product(out, _expand_one(op, av))][:_CAP]
    return out


def _expand_one(op: object, av: object) -> list[str]:
    if op is C.LITERAL:
        return [chr(av)]  # type: ignore[arg-type]
    if op is C.SUBPATTERN:
        return _expand(av[-1])  # type: ignore[index]
    if op is C.BRANCH:
        return [s for branch in av[1] for s in _expand(branch)][:_CAP]  # type: ignore[index]
    if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
        low, high, item = av  # type: ignore[misc]
        if high == 1:
            return ([""] if low == 0 else []) + _expand(item)
        return [WILD]
    if op is C.IN and all(o is C.LITERAL for o, _ in av):  # type: ignore[attr-defined]
        return [chr(v) for _, v in av]  # type: ignore[attr-defined]
    if op in (C.AT, C.ASSERT, C.ASSERT_NOT):
        return [""]
    return [WILD]


def lexicon_of(patterns: Iterable[re.Pattern[str]]) -> tuple[set[str], set[str]]:
    """(words, stems) the patterns match: stems are words followed by open-ended text."""
    words: set[str] = set()
    stems: set[str] = set()
    for p in patterns:
        for s in expand(p.pattern):
            for tok in _TOKEN.findall(s.casefold()):
                if tok.endswith(WILD) and len(tok) > 4:
                    stems.add(tok[:-1])
                elif WILD not in tok and len(tok) >= 4:
                    words.add(tok)
    return words, stems


@lru_cache(maxsize=1)
def _russian() -> Callable[[str], bool]:
    import pymorphy3

    return pymorphy3.MorphAnalyzer().word_is_known


def is_known(word: str, latin: frozenset[str]) -> bool:
    """Whether ``word`` is a real word (``latin``: the English, French and Spanish words)."""
    return _russian()(word) if _CYRILLIC.match(word) else word in latin


@lru_cache(maxsize=1)
def known_words() -> frozenset[str]:
    """Real words of the dictionary languages (loaded once per process)."""
    from spellchecker import SpellChecker

    words: set[str] = set()
    for code in DICTIONARY_LANGUAGES:
        words.update(w for w in SpellChecker(language=code).word_frequency.dictionary if len(w) >= 4)
    return frozenset(words)


def _limit(n: int) -> int:
    return 1 if n < 10 else 2


class SpellFixer:
    """Rewrites misspelled red-flag words of normalized text to the lexicon's spelling."""

    def __init__(self, words: set[str], stems: set[str], known: frozenset[str] | None = None) -> None:
        self.words = words
        self.stems = stems
        self.known = known_words() if known is None else known
        self._by_len: dict[int, list[str]] = defaultdict(list)
        for w in words:
            self._by_len[len(w)].append(w)
        self._stems_by_len: dict[int, list[str]] = defaultdict(list)
        for s in stems:
            self._stems_by_len[len(s)].append(s)
        self.fix_word = lru_cache(maxsize=65536)(self._fix_word)

    def fix(self, t: str) -> str:
        """``t`` with misspelled lexicon words corrected."""
        return _WORD.sub(lambda m: self.fix_word(m.group()), t)

    def _fix_word(self, w: str) -> str:
        if w in self.words or is_known(w, self.known) or any(w[:n] in self.stems for n in self._stems_by_len):
            return w
        n = len(w)
        if n == 4:  # short words: a dropped letter ("fevr", "грди") or two swapped ones ("pian"), never a changed one
            swaps = [w[:i] + w[i + 1] + w[i] + w[i + 2:] for i in range(3)]
            found = process.extractOne(w, self._by_len.get(5, ()), scorer=Indel.distance, score_cutoff=1)
            return found[0] if found is not None else next((v for v in swaps if v in self.words), w)
        best, best_key = w, (3, 0)  # (edits, -letters matched): fewest edits, then the longest lexicon match
        for m in range(n - 2, n + 3):
            found = process.extractOne(w, self._by_len.get(m, ()), scorer=DamerauLevenshtein.distance,
                                       score_cutoff=_limit(min(n, m)))
            if found is not None and (found[1], -m) < best_key:
                best, best_key = found[0], (found[1], -m)
        for m, stems in self._stems_by_len.items():
            for k in (m - 1, m, m + 1):
                if k < 4 or k > n:
                    continue
                found = process.extractOne(w[:k], stems, scorer=DamerauLevenshtein.distance,
                                           score_cutoff=_limit(m))
                if found is not None and (found[1], -m) < best_key:  # "судароги": "судорог" + "и", not "удар" + "оги"
                    best, best_key = found[0] + w[k:], (found[1], -m)
        return best
