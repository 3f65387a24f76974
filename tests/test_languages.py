"""The language registry and its segmenters."""

from __future__ import annotations

import pytest

from mmedkit.languages import CODES, get_language, parse_langs


def test_registry_codes_and_names() -> None:
    assert CODES == ("en", "zh", "ja", "fr", "ru", "es")
    assert [get_language(c).name for c in CODES] == ["English", "Chinese", "Japanese", "French", "Russian",
                                                     "Spanish"]
    assert get_language("Русский").code == "ru" and get_language("FRENCH").code == "fr"
    with pytest.raises(KeyError, match="unknown language 'de'"):
        get_language("de")


def test_parse_langs_keeps_registry_order() -> None:
    assert [lang.code for lang in parse_langs("es,en, zh")] == ["en", "zh", "es"]
    assert len(parse_langs(None)) == len(parse_langs("all")) == 6


@pytest.mark.parametrize(("code", "text", "expected"), [
    ("en", "Chest pain, non-radiating; BP 120/80.", ["Chest", "pain", "non-radiating", "BP", "120", "80"]),
    ("fr", "L'hypertension artérielle s'aggrave.", ["L'hypertension", "artérielle", "s'aggrave"]),
    ("ru", "Боль в груди, одышка.", ["Боль", "в", "груди", "одышка"]),
    ("es", "Fiebre y tos desde hace 3 días.", ["Fiebre", "y", "tos", "desde", "hace", "3", "días"]),
    ("zh", "患者发热3天，咳嗽（CT正常）。", ["患者", "发热", "3", "天", "咳嗽", "CT", "正常"]),  # jieba
    ("ja", "頭痛とめまいがある。MRIは正常。", ["頭痛", "と", "めまい", "が", "ある", "MRI", "は", "正常"]),  # janome
])
def test_segmenters(code: str, text: str, expected: list[str]) -> None:
    assert get_language(code).segment(text) == expected
