"""Medical keyword density: an Aho-Corasick matcher and the datatrove filter step built on it.

The rule is the study's: a document is medical when the number of *distinct* keywords found reaches a
per-language count AND the characters covered by keyword hits, divided by the text length, reach a
per-language ratio. What differs from the study's script is how the keywords are found: one pass of a
multi-pattern automaton over the case-folded text, whole words (Unicode word boundaries) for
space-delimited languages, plain substrings for Chinese and Japanese, and lists written for this
project in the inflected forms that occur in running text (``corpus/keywords/<code>.txt``).

For a space-delimited language whose keywords all fit a one-byte encoding (Latin-1, Windows-1252 or
Windows-1251), a text made of that encoding's characters (plus punctuation and symbols) is case-folded
straight into that encoding with a byte translation table: one byte per character, so the automaton
reads half the bytes of UTF-8 Cyrillic, its offsets are character offsets, and the boundary checks are
table look-ups. Any other text takes the general path; both give the same hits.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from functools import cache
from operator import itemgetter
from pathlib import Path

import ahocorasick_rs
from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.writers.disk_base import DiskWriter

from mmedkit.languages import LANGUAGES, get_language
from mmedkit.reference import STUDY_KEYWORD_THRESHOLDS
from mmedkit.text import UNSPACED_START, normalize

Thresholds = dict[str, tuple[int, float]]

STUDY_THRESHOLDS: Thresholds = STUDY_KEYWORD_THRESHOLDS
"""The thresholds of the study's released filter script, as (distinct keywords, covered-character ratio)."""

DEFAULT_THRESHOLDS: Thresholds = {"en": (2, 0.025), "zh": (2, 0.02), "ja": (2, 0.025),
                                  "ru": (2, 0.05), "es": (3, 0.02), "fr": (4, 0.015)}
"""Our thresholds for our lists: the stable choice of ``mmedkit.corpus.calibrate`` on the labelled
development sample (../shared/data/corpus_dev), confirmed by 5-fold cross-validation there."""

# Characters from U+2E80 on are CJK radicals, punctuation, kana and ideographs (plus Hangul and
# full-width forms): a hit next to one of them still sits on a word boundary, except next to a
# full-width letter or digit (U+FF10-U+FF5A), which continues a full-width Latin word.
_CJK_START = UNSPACED_START
_FULLWIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})

FEW_KEYWORDS = "few medical keywords"
LOW_DENSITY = "low keyword density"
UNSUPPORTED = "unsupported language"


def read_keyword_file(path: str | Path) -> list[str]:
    """Read a keyword list: one term a line, ``#`` starts a comment line, blank lines ignored.

    Raises ValueError naming the file and line of a malformed entry (control characters, a term of
    one character that is not a CJK ideograph, a term without any letter).
    """
    path = Path(path)
    terms: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            term = raw.strip()
            if not term or term.startswith("#"):
                continue
            if any(unicodedata.category(c).startswith("C") for c in term):
                raise ValueError(f"{path}:{lineno}: keyword {term!r} contains a control character")
            if len(term) < 2 and term < _CJK_START:
                raise ValueError(f"{path}:{lineno}: keyword {term!r} is a single non-CJK character")
            if not any(c.isalpha() for c in term):
                raise ValueError(f"{path}:{lineno}: keyword {term!r} has no letter")
            terms.append(term)
    if not terms:
        raise ValueError(f"{path}: keyword list is empty")
    return terms


def normalise(text: str) -> str:
    """NFC + case folding, the form both keywords and documents are matched in.

    Case folding is Unicode-aware: Cyrillic and Greek fold like Latin, "ß" folds to "ss", and
    full-width Latin letters fold to full-width lower case. NFC, not NFKC, and whitespace kept: full-width
    forms of a keyword are matched as variants of their own, and :class:`_SingleByteFolder` reproduces
    exactly this form one byte per character.
    """
    return normalize(text, form="NFC", collapse_spaces=False)


def _is_word_char(c: str) -> bool:
    """A letter or digit that continues a word of a space-delimited script (or a full-width Latin word)."""
    return (c < _CJK_START or "\uff10" <= c <= "\uff5a") and c.isalnum()


_ASCII_WORD = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _word_char_before(data: bytes, i: int) -> bool:
    """Whether the UTF-8 character ending just before byte ``i`` is a word character."""
    b = data[i - 1]
    if b < 0x80:
        return b in _ASCII_WORD
    j = i - 1
    while j > 0 and data[j] & 0xC0 == 0x80:
        j -= 1
    return _is_word_char(data[j:i].decode("utf-8"))


def _word_char_at(data: bytes, i: int) -> bool:
    """Whether the UTF-8 character starting at byte ``i`` is a word character."""
    b = data[i]
    if b < 0x80:
        return b in _ASCII_WORD
    size = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
    return _is_word_char(data[i:i + size].decode("utf-8"))


class _CharCache(dict[str, bool]):
    """A character property computed once per distinct character."""

    def __init__(self, test: Callable[[str], bool]) -> None:
        super().__init__()
        self.test = test

    def __missing__(self, c: str) -> bool:
        value = self[c] = self.test(c)
        return value


def _nfc_inert(c: str) -> bool:
    """Whether ``c`` is in NFC and NFC never merges it with the character before it.

    Canonical composition only merges a character with a following combining mark (Mn, Mc) or Hangul
    jamo, and only marks have a non-zero combining class: a text made of NFC-stable characters whose
    decomposition starts with neither is in NFC (tests/corpus/test_corpus_keywords_equivalence.py checks
    these facts on the Unicode database of the running Python).
    """
    first = unicodedata.normalize("NFD", c)[0]
    return (unicodedata.normalize("NFC", c) == c and unicodedata.category(first)[0] != "M"
            and not "\u1100" <= first <= "\u11ff")


def _is_inert(c: str) -> bool:
    """Whether ``c`` may stand as ``?`` in the single-byte scan: punctuation, a symbol, a space or a
    control or format character (no surrogate) that is no word character and folds to itself."""
    category = unicodedata.category(c)
    return (category[0] in "PSZC" and category != "Cs" and c.casefold() == c and not _is_word_char(c)
            and _nfc_inert(c))


_WORD_CHARS = _CharCache(_is_word_char)
_INERT = _CharCache(_is_inert)
_SINGLE_BYTE_CODECS = ("latin-1", "cp1252", "cp1251")
"""One-byte encodings tried, in order, for the keywords of a space-delimited language."""


class _SingleByteFolder:
    """Normalises and case-folds text straight into a one-byte encoding, one byte per character.

    ``fold(text)`` equals ``normalise(text).encode(codec, "replace")`` whenever it returns bytes: the
    text is made only of the encoding's characters whose case folding is one character of the encoding
    (``lower`` maps their bytes) and of inert characters, which fold to themselves, are already NFC, and
    become ``?`` like in that expression. ``word[b]`` says whether byte ``b`` is a word character.
    """

    def __init__(self, codec: str) -> None:
        self.codec = codec
        lower = bytearray(range(256))
        word = [False] * 256
        unsafe = []
        for b in range(256):
            try:
                c = bytes([b]).decode(codec)
            except UnicodeDecodeError:  # unassigned byte: the encoder never writes it
                continue
            word[b] = _is_word_char(c)
            try:
                folded = c.casefold().encode(codec)
            except UnicodeEncodeError:  # "µ" folds to the Greek letter, outside Latin-1
                folded = b""
            if len(folded) != 1 or not _nfc_inert(c):  # "ß" folds to "ss"
                unsafe.append(b)
            else:
                lower[b] = folded[0]
        self.lower = bytes(lower)
        self.word = tuple(word)
        self.unsafe = bytes(unsafe)

    def fold(self, text: str) -> bytes | None:
        """``normalise(text)`` encoded one byte per character, or None when ``text`` needs the general path."""
        data = text.encode(self.codec, "replace")
        for b in self.unsafe:
            if b in data:
                return None
        q = data.find(63)  # "?": the text's own or an unencodable character
        while q >= 0:
            c = text[q]
            if c != "?" and not _INERT[c]:
                return None
            q = data.find(63, q + 1)
        return data.translate(self.lower)


@cache
def _single_byte_folder(codec: str) -> _SingleByteFolder:
    return _SingleByteFolder(codec)


def _single_byte_codec(keywords: list[str]) -> str | None:
    """The first one-byte encoding that spells every keyword (none with a ``?``), or None."""
    if any("?" in k for k in keywords):
        return None
    for codec in _SINGLE_BYTE_CODECS:
        try:
            for k in keywords:
                k.encode(codec)
        except UnicodeEncodeError:
            continue
        return codec
    return None


_KID, _END = itemgetter(0), itemgetter(2)


class KeywordMatcher:
    """Counts distinct medical keywords and the share of characters they cover, in one automaton pass.

    For space-delimited languages a keyword matches only as a whole word sequence: the characters just
    before and after a hit must not be letters or digits ("anemia" does not match in "hypoanemias",
    "рак" does not match in "ракета"), so inflected forms are listed explicitly in the keyword files.
    For Chinese and Japanese a keyword matches as a plain substring, except that a keyword edge written
    in Latin letters or digits ("CT", "MRI") still needs a boundary on that side; such keywords also
    match in their full-width spelling ("ＣＴ"), common in Japanese text.

    The automaton is a DFA from ``ahocorasick_rs`` (the Rust ``aho-corasick`` crate) run over the bytes
    of the normalised text: one pass returns every hit, overlapping ones included, without a Python-level
    loop over characters. The bytes are those of a one-byte encoding when the language is space-delimited
    and its keywords fit one (see ``_SingleByteFolder``: offsets are then character offsets), else UTF-8,
    whose offsets are converted back to characters only for the coverage.
    """

    def __init__(self, language: str, keywords: Iterable[str] | None = None, *, single_byte: bool = True) -> None:
        """``single_byte=False`` always takes the general path (UTF-8), the reference the fast one is tested on."""
        lang = get_language(language)
        self.language = lang.code
        self.space_delimited = lang.space_delimited
        if keywords is None:
            path = lang.keyword_list
            if path is None:
                raise FileNotFoundError(f"no keyword list for language {lang.code!r} "
                                        f"(expected mmedkit/corpus/keywords/{lang.code}.txt)")
            keywords = read_keyword_file(path)
        self.keywords: list[str] = []
        patterns: dict[str, tuple[int, bool, bool]] = {}
        for term in keywords:
            key = normalise(term.strip())
            if not key or key in patterns:
                continue
            kid = len(self.keywords)
            self.keywords.append(key)
            # a boundary is required on each side whose edge character belongs to a word
            patterns[key] = (kid, self.space_delimited or _is_word_char(key[0]),
                             self.space_delimited or _is_word_char(key[-1]))
            wide = key.translate(_FULLWIDTH)
            if not self.space_delimited and wide != key and wide not in patterns:
                patterns[wide] = (kid, _is_word_char(wide[0]), _is_word_char(wide[-1]))
        if not self.keywords:
            raise ValueError(f"keyword list for {lang.code!r} is empty")
        # space-delimited: pattern i is keyword i, with a boundary on both sides
        codec = _single_byte_codec(self.keywords) if self.space_delimited and single_byte else None
        self._folder = None if codec is None else _single_byte_folder(codec)
        self._info = list(patterns.values())
        self._automaton = ahocorasick_rs.BytesAhoCorasick(
            [p.encode(codec or "utf-8") for p in patterns], matchkind=ahocorasick_rs.MatchKind.Standard,
            implementation=ahocorasick_rs.Implementation.DFA)

    def __len__(self) -> int:
        return len(self.keywords)

    def _hits(self, data: bytes) -> list[tuple[int, int, int]]:
        """``(keyword id, start, end)`` byte offsets of every hit of UTF-8 ``data`` on the required boundaries."""
        n = len(data)
        info = self._info
        out = []
        for pid, start, end in self._automaton.find_matches_as_indexes(data, overlapping=True):
            kid, left, right = info[pid]
            if left and start and _word_char_before(data, start):
                continue
            if right and end < n and _word_char_at(data, end):
                continue
            out.append((kid, start, end))
        return out

    def _word_hits(self, folder: _SingleByteFolder, text: str) -> tuple[list[tuple[int, int, int]], int]:
        """Single-byte path: ``(keyword id, start, end)`` character offsets of every whole-word hit, in the
        automaton's order (by end), and the length of the normalised text."""
        data = folder.fold(text)
        if data is None:  # characters outside the encoding: they become "?", boundaries are read in the string
            folded = normalise(text)
            data = folded.encode(folder.codec, "replace")
            chars, is_word = folded, _WORD_CHARS
        else:
            chars, is_word = data, folder.word
        n = len(data)
        return [(kid, start, end) for kid, start, end in self._automaton.find_matches_as_indexes(data, overlapping=True)
                if not (start and is_word[chars[start - 1]]) and not (end < n and is_word[chars[end]])], n

    def hits(self, text: str) -> list[tuple[int, int, str]]:
        """All keyword hits as ``(start, end, keyword)`` character offsets in the normalised text."""
        if self._folder is not None:
            return [(start, end, self.keywords[kid]) for kid, start, end in self._word_hits(self._folder, text)[0]]
        data = normalise(text).encode("utf-8")
        return [(len(data[:start].decode("utf-8")), len(data[:end].decode("utf-8")), self.keywords[kid])
                for kid, start, end in self._hits(data)]

    def scan(self, text: str) -> tuple[int, float]:
        """Return ``(distinct keywords found, covered characters / text length)``; ``(0, 0.0)`` for empty text.

        Overlapping hits ("heart failure" and "failure") count every keyword found but cover each
        character once. The length is that of the normalised text.
        """
        if not text:
            return 0, 0.0
        if self._folder is not None:
            hits, n = self._word_hits(self._folder, text)
            if not hits:
                return 0, 0.0
            covered, lo, hi = 0, n, n
            for _, start, end in sorted(hits, key=_END, reverse=True):  # merge the spans from the right
                if end <= lo:
                    covered += hi - lo
                    lo, hi = start, end
                elif start < lo:
                    lo = start
            return len(set(map(_KID, hits))), (covered + hi - lo) / n
        folded = normalise(text)
        data = folded.encode("utf-8")
        hits = self._hits(data)
        if not hits:
            return 0, 0.0
        spans = sorted((start, end) for _, start, end in hits)
        covered, cur_start, cur_end = 0, spans[0][0], spans[0][1]
        for start, end in spans[1:]:
            if start >= cur_end:
                covered += len(data[cur_start:cur_end].decode("utf-8"))
                cur_start, cur_end = start, end
            elif end > cur_end:
                cur_end = end
        covered += len(data[cur_start:cur_end].decode("utf-8"))
        return len({kid for kid, _, _ in hits}), covered / len(folded)



@cache
def matcher_for(language: str) -> KeywordMatcher:
    """The shipped list's matcher for ``language``, built once per process."""
    return KeywordMatcher(language)


def check_thresholds(thresholds: Thresholds) -> Thresholds:
    """Validate ``{code: (count, ratio)}`` and return it with language codes normalised."""
    out: Thresholds = {}
    for key, value in thresholds.items():
        code = get_language(key).code
        try:
            count, ratio = value
        except (TypeError, ValueError):
            raise ValueError(f"thresholds[{key!r}]: expected (count, ratio), got {value!r}") from None
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"thresholds[{key!r}]: count must be an integer >= 0, got {count!r}")
        if not isinstance(ratio, (int, float)) or not 0.0 <= ratio <= 1.0:
            raise ValueError(f"thresholds[{key!r}]: ratio must be a number in [0, 1], got {ratio!r}")
        out[code] = (count, float(ratio))
    return out


class MedicalKeywordFilter(BaseFilter):
    """Keep documents dense in medical keywords of their language (``doc.metadata[language_key]``).

    Writes ``medical_keywords_distinct`` and ``medical_keyword_ratio`` to the metadata of every
    document it scores; drops with the reason ``"unsupported language"``, ``"few medical keywords"``
    or ``"low keyword density"`` (counted in the step's stats as ``dropped_<reason>``, and per
    language as ``<code>_kept`` / ``<code>_dropped``).
    """

    name = "🩺 Medical keywords"

    def __init__(self, thresholds: Thresholds | None = None, languages: list[str] | None = None,
                 language_key: str = "language", exclusion_writer: DiskWriter | None = None) -> None:
        super().__init__(exclusion_writer)
        merged = {**DEFAULT_THRESHOLDS, **check_thresholds(thresholds or {})}
        codes = [get_language(c).code for c in languages] if languages else list(LANGUAGES)
        for code in codes:
            if LANGUAGES[code].keyword_list is None:
                raise ValueError(f"language {code!r} has no keyword list")
            if code not in merged:
                raise ValueError(f"no thresholds for language {code!r}")
        self.thresholds: Thresholds = {code: merged[code] for code in codes}
        self.language_key = language_key

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        """Score ``doc`` and decide whether it is kept."""
        code = doc.metadata.get(self.language_key)
        limits = self.thresholds.get(code) if isinstance(code, str) else None
        if limits is None:
            return False, UNSUPPORTED
        distinct, ratio = matcher_for(code).scan(doc.text or "")
        doc.metadata["medical_keywords_distinct"] = distinct
        doc.metadata["medical_keyword_ratio"] = round(ratio, 6)
        min_count, min_ratio = limits
        reason = FEW_KEYWORDS if distinct < min_count else LOW_DENSITY if ratio < min_ratio else None
        self.stat_update(f"{code}_dropped" if reason else f"{code}_kept")
        return (False, reason) if reason else True
