"""Shared text primitives: script classes and the normal forms."""

from __future__ import annotations

import pytest

import mmedkit.text as txt


@pytest.mark.parametrize("classes,inside,outside", [
    ((txt.HAN,), "中医学﨑", "がАa"),
    ((txt.KANA,), "がカㇰ", "中a"),
    ((txt.CJK,), "中が", "Ａ。a"),
    ((txt.CJK, txt.FULLWIDTH), "中がＡ１ｶ", "。a"),
    ((txt.UNSPACED,), "中が。Ａ⺀ㄅ", "aАé한"),
    ((txt.CYRILLIC,), "АяёЙ", "aα"),
    ((txt.LATIN,), "aZéÿŒ", "αА中"),
])
def test_script_classes(classes: tuple[str, ...], inside: str, outside: str) -> None:
    pattern = txt.script_re(*classes)
    assert all(pattern.fullmatch(c) for c in inside), inside
    assert not any(pattern.fullmatch(c) for c in outside), outside


def test_unspaced_start_is_the_first_unspaced_code_point() -> None:
    pattern = txt.script_re(txt.UNSPACED)
    assert pattern.fullmatch(txt.UNSPACED_START) and not pattern.fullmatch(chr(ord(txt.UNSPACED_START) - 1))


@pytest.mark.parametrize("text,kwargs,expected", [
    ("  Ａｎｓｗｅｒ\t:\n B ", {}, "answer : b"),
    ("Straße ﬁne", {}, "strasse fine"),
    ("ＡＢＣ  x", {"form": "NFC", "collapse_spaces": False}, "ａｂｃ  x"),
    ("e\u0301", {"form": "NFC", "collapse_spaces": False}, "é"),
    ("Already  NFKC", {"form": None}, "already nfkc"),
])
def test_normalize(text: str, kwargs: dict, expected: str) -> None:
    assert txt.normalize(text, **kwargs) == expected


@pytest.mark.parametrize("text,casefold,expected", [
    ("Douleur THORACIQUE à l’épaule", True, "douleur thoracique a l'epaule"),
    ("Ёлка  й\tが", True, "елка й が"),
    ("Ёлка", False, "Елка"),
    ("line one\n\nline  two", True, "line one\n\nline two"),
    ("３８℃ ｶﾞ", True, "38°c ガ"),
])
def test_normalize_loose(text: str, casefold: bool, expected: str) -> None:
    assert txt.normalize_loose(text, casefold=casefold) == expected
