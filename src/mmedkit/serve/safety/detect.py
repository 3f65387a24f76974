"""The language of a user message among the six MMed languages."""

from __future__ import annotations

import re
from collections.abc import Sequence

from mmedkit.languages import CODES
from mmedkit.text import CYRILLIC, HAN, KANA, LATIN, script_re

_KANA = script_re(KANA)
_HAN = script_re(HAN)
_CYRILLIC = script_re(CYRILLIC)
_LATIN = script_re(LATIN)
_MARKUP = re.compile(r"<[^<>]{0,500}>|&#?\w{1,10};|\b(?:https?|ftp)://\S+")
"""HTML tags, character references and URLs: not the language the user writes in."""


class LanguageDetector:
    """The language of a user message among the six MMed languages.

    The script decides where it can (kana: Japanese; Cyrillic: Russian; Han without kana:
    Chinese, or the page's language when that is Japanese); Latin-script text goes to the
    py3langid classifier restricted to English, French and Spanish, and very short or unclear
    text to the page's language (``hint``). HTML tags, character references and URLs are left out.
    """

    def __init__(self, codes: Sequence[str] = CODES, min_confidence: float = 0.7) -> None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        self.codes = tuple(codes)
        self.min_confidence = min_confidence
        self._latin = [c for c in self.codes if c in ("en", "fr", "es")]
        self._ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        self._ident.set_languages(self._latin or None)

    def detect(self, text: str, hint: str | None = None) -> str:
        """ISO code of ``text``'s language; ``hint`` (the page's language) breaks ties."""
        hint = hint if hint in self.codes else None
        fallback = hint or self.codes[0]
        text = _MARKUP.sub(" ", text)
        kana, han = len(_KANA.findall(text)), len(_HAN.findall(text))
        cyr, latin = len(_CYRILLIC.findall(text)), len(_LATIN.findall(text))
        if not (kana or han or cyr or latin):
            return fallback
        if kana and "ja" in self.codes:
            return "ja"
        if han >= max(cyr, latin) and han:
            if hint in ("zh", "ja"):
                return hint
            return "zh" if "zh" in self.codes else fallback
        if cyr > latin and "ru" in self.codes:
            return "ru"
        if not self._latin:
            return fallback
        lang, conf = self._ident.classify(text)
        if hint in self._latin and conf < self.min_confidence:
            return hint
        return lang
