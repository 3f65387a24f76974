"""Shared text primitives: Unicode script classes and the normal forms text is compared in.

Script classes are regex character-class bodies, so they compose: ``re.compile(f"[{KANA}{HAN}]")``.

* :data:`HAN`, :data:`KANA`, :data:`CJK` (both), :data:`FULLWIDTH`, :data:`CYRILLIC`, :data:`LATIN`,
  :data:`GREEK`, and :data:`UNSPACED` (every script written without spaces between words, from
  :data:`UNSPACED_START` on).
* :func:`normalize` — the comparison form (Unicode form, case folding, collapsed whitespace) used by
  answer extraction, keyword matching and exact deduplication, each with the form it needs.
* :func:`normalize_loose` — the safety screen's accent- and apostrophe-insensitive form.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

__all__ = ["CJK", "CYRILLIC", "FULLWIDTH", "GREEK", "HAN", "KANA", "LATIN", "UNSPACED", "UNSPACED_START",
           "normalize", "normalize_loose", "script_re"]

HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
"""CJK unified ideographs, extension A and compatibility ideographs (Chinese hanzi, Japanese kanji)."""
KANA = "\u3040-\u30ff\u31f0-\u31ff"
"""Hiragana, katakana and the katakana phonetic extensions."""
CJK = HAN + KANA
"""Chinese and Japanese characters."""
FULLWIDTH = "\uff00-\uffef"
"""Half-width and full-width forms (full-width Latin, digits and punctuation; half-width kana)."""
CJK_SYMBOLS = "\u2e80-\u2fff\u3000-\u303f\u3100-\u312f"
"""CJK radicals, CJK punctuation (``。「」``) and bopomofo."""
UNSPACED = CJK_SYMBOLS + CJK + FULLWIDTH
"""Scripts written without spaces between words: a character of these is a word of its own."""
UNSPACED_START = "\u2e80"
"""The first code point of :data:`UNSPACED`: every character below it belongs to a spaced script."""
LATIN = "A-Za-z\u00c0-\u024f"
"""Latin letters, with the accented ones of Latin-1 Supplement and Latin Extended-A/B."""
GREEK = "\u0370-\u03ff"
CYRILLIC = "\u0400-\u04ff"


def script_re(*classes: str) -> re.Pattern[str]:
    """One compiled character class of the given script classes (``script_re(KANA, HAN)``)."""
    return re.compile(f"[{''.join(classes)}]")


def normalize(text: str, *, form: Literal["NFC", "NFKC"] | None = "NFKC", collapse_spaces: bool = True) -> str:
    """``text`` in Unicode ``form``, case folded, with runs of whitespace made one space (ends trimmed).

    NFKC (the default) also reads full-width letters and digits, ligatures and ``℃`` as their plain
    forms; keyword matching asks for NFC and keeps whitespace, so that full-width words stay apart and
    offsets in the folded text stay those of the words; ``form=None`` is for text already normalised.
    """
    if form is not None and not unicodedata.is_normalized(form, text):
        text = unicodedata.normalize(form, text)
    text = text.casefold()
    return " ".join(text.split()) if collapse_spaces else text


_APOSTROPHES = str.maketrans({"\u2019": "'", "\u02bc": "'", "`": "'", "\u00a0": " "})
_YO = str.maketrans("ёЁ", "еЕ")
_HSPACE = re.compile(r"[ \t\r\f\v]+")


def normalize_loose(text: str, *, casefold: bool = True) -> str:
    """The form the safety screen matches messages and patterns in, the same for every language.

    Looser than :func:`normalize` on purpose, because people type symptoms carelessly: NFKC, curly
    apostrophes straightened, accents of Latin letters dropped (``épaule`` matches ``epaule``), ``ё``
    read as ``е``; other scripts keep their marks (``й``, ``が``). Line breaks are kept (they end
    sentences); other runs of whitespace become one space.
    """
    t = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    if casefold:
        t = t.casefold()
    out: list[str] = []
    for ch in unicodedata.normalize("NFD", t):
        if unicodedata.combining(ch) and out and "a" <= out[-1].lower() <= "z":
            continue
        out.append(ch)
    t = unicodedata.normalize("NFC", "".join(out)).translate(_YO)
    return _HSPACE.sub(" ", t)
