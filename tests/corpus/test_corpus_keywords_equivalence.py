"""The single-byte fast path of the keyword matcher gives exactly the hits of the general (UTF-8) path.

``KeywordMatcher(code, single_byte=False)`` runs the general path only: the automaton over the UTF-8
bytes of the normalised text with a boundary check per hit, the matcher as it was before the fast path.
"""

from __future__ import annotations

import random
import unicodedata

import pytest

pytest.importorskip("datatrove")
pytest.importorskip("ahocorasick_rs")

from mmedkit.corpus.calibrate import read_labelled  # noqa: E402
from mmedkit.corpus.keywords import (  # noqa: E402
    _SINGLE_BYTE_CODECS,
    KeywordMatcher,
    _nfc_inert,
    _single_byte_folder,
    matcher_for,
    normalise,
    read_keyword_file,
)
from mmedkit.languages import CODES, LANGUAGES  # noqa: E402

SPACED = [code for code in CODES if LANGUAGES[code].space_delimited]

# characters that take every branch of the fold: cased Latin-1 and Cyrillic letters, letters that fold
# to two characters or outside the encoding ("ß", "µ", Kelvin sign, "ﬁ"), a combining accent after a
# letter, punctuation outside the encodings (inert), CJK and full-width letters (outside, not inert),
# emoji, "?" itself, C1 controls and unassigned cp1252 positions, a soft hyphen and a no-break space
TRICKY = ("aAéÉœŒÿŸçÇñÑ-' ,.;\n\t?!«»" "жЖёЁйЙіІ" "ßµ\u212a\ufb01\u0301" "’“”—…€™№•" "肺炎ＣＴｃｔ"
          "\U0001f600\x81\x9c\u00ad\u00a0\u03bc\u039c\u0130")


def _unicode_chars():
    return (chr(cp) for cp in range(0x110000))


def test_unicode_facts_behind_the_nfc_shortcut() -> None:
    """Only marks have a non-zero combining class; only marks (and Hangul jamo, composed by rule) are
    ever the second part of a canonical composition."""
    for c in _unicode_chars():
        category = unicodedata.category(c)
        if unicodedata.combining(c):
            assert category[0] == "M", f"U+{ord(c):04X} has combining class {unicodedata.combining(c)}"
        decomposition = unicodedata.decomposition(c).split()
        if len(decomposition) == 2 and not decomposition[0].startswith("<"):
            pair = "".join(chr(int(h, 16)) for h in decomposition)
            if unicodedata.normalize("NFC", pair) == c:  # a primary composite: pair[1] merges with pair[0]
                assert unicodedata.category(pair[1])[0] == "M", f"U+{ord(c):04X} composes with {pair[1]!r}"


def test_nfc_inert_characters() -> None:
    assert all(_nfc_inert(c) for c in "aé?’€жЁ\u00ad ")
    # a combining accent, a Hangul vowel (composes with a leading consonant), the Angstrom sign (NFC "Å")
    assert not any(_nfc_inert(c) for c in "\u0301\u1161\u212b")
    assert unicodedata.normalize("NFC", "\u1100\u1161") == "\uac00"


@pytest.mark.parametrize("codec", _SINGLE_BYTE_CODECS)
def test_fold_equals_normalise_then_encode(codec: str) -> None:
    folder = _single_byte_folder(codec)
    rng = random.Random(7)
    folded = 0
    for _ in range(3000):
        text = "".join(rng.choice(TRICKY) for _ in range(rng.randint(0, 12)))
        data = folder.fold(text)
        if data is not None:
            folded += 1
            assert data == normalise(text).encode(codec, "replace"), (codec, text)
    assert folded > 300, f"{codec}: only {folded} of 3000 texts took the fast path"
    # the cases that must take the general path
    for text in ("Straße", "5 µg", "e\u0301", "\u212aelvin", "\ufb01n", "肺炎", "ｃｔ", "a\ud800"):
        assert folder.fold(text) is None, (codec, text)
    text = "“Fever” — 50 €’?\n"  # "’", "“", "”", "—" and, in Latin-1, "€" stand as "?"
    assert folder.fold(text) == normalise(text).encode(codec, "replace")


def _random_text(rng: random.Random, keywords: list[str]) -> str:
    parts = []
    for _ in range(rng.randint(1, 30)):
        r = rng.random()
        if r < 0.45:
            word = rng.choice(keywords)
            word = rng.choice([word, word.upper(), word.capitalize()])
            if rng.random() < 0.2:  # a keyword inside a longer word, or cut short
                word = rng.choice([word + rng.choice("sаяxé1"), rng.choice("ab") + word, word[:-1]])
        elif r < 0.5:
            word = "".join(rng.choice(TRICKY) for _ in range(rng.randint(1, 3)))
        else:
            word = rng.choice(["the", "de", "el", "и", "x1", "ß", "co2"])
        parts.append(word)
        parts.append(rng.choice([" ", " ", " ", ", ", "-", "’", "\n", "? ", " — ", "\u00a0", "", "/"]))
    return "".join(parts)


@pytest.mark.parametrize("code", SPACED)
def test_fast_path_equals_general_path_on_generated_text(code: str) -> None:
    keywords = read_keyword_file(LANGUAGES[code].keyword_list)
    fast, general = matcher_for(code), KeywordMatcher(code, keywords, single_byte=False)
    assert fast._folder is not None, f"{code}: keywords fit no one-byte encoding"
    rng = random.Random(code)
    paths = {True: 0, False: 0}
    for _ in range(400):
        text = _random_text(rng, keywords)
        paths[fast._folder.fold(text) is not None] += 1
        assert fast.hits(text) == general.hits(text), text
        assert fast.scan(text) == general.scan(text), text
    assert min(paths.values()) > 40, f"{code}: both paths should be exercised, got {paths}"


def test_keywords_outside_every_encoding_take_the_general_path() -> None:
    m = KeywordMatcher("en", ["β-blocker", "heart failure"])
    assert m._folder is None
    assert m.scan("Β-blocker for heart failure")[0] == 2
    assert KeywordMatcher("en", ["why?", "fever"])._folder is None  # "?" stands for what fits no encoding


@pytest.mark.parametrize("code", CODES)
def test_same_hits_as_general_path_on_corpus_dev(code: str, shared_data) -> None:
    path = shared_data / "corpus_dev" / f"{code}.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    docs = read_labelled(path)
    fast, general = matcher_for(code), KeywordMatcher(code, single_byte=False)
    for i, doc in enumerate(docs):
        assert fast.hits(doc.text) == general.hits(doc.text), f"{path}: document {i}"
        assert fast.scan(doc.text) == general.scan(doc.text), f"{path}: document {i}"
    if LANGUAGES[code].space_delimited:  # the comparison above is the fast path's, for nearly every document
        assert fast._folder is not None
        share = sum(fast._folder.fold(d.text) is not None for d in docs) / len(docs)
        assert share > 0.9, f"{code}: only {share:.0%} of documents took the single-byte path"
