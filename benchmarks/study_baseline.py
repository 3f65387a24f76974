"""THE STUDY'S METHOD (baseline only): MMedLM's keyword filter as its released script runs it.

A reimplementation, for comparison, of the medical-text filter of the MMedLM study
(github.com/MAGIC-AI4Med/MMedLM, data_collection/filtering), following the rule spelled out in
../shared/data/reference/README.md. The study's keyword lists are read at run time from
../shared/data/reference/mmedlm_keywords.json and are never copied into this repository.

The rule, per language (the study's keys: ``jp`` for Japanese):
- keywords: the union of the language's two lists, de-duplicated, lower-cased;
- "long" keywords (more than 10 characters, or more than 5 with a space): substring test on the
  lower-cased text, each found keyword adding its occurrence count x its length to the hit
  characters; if both thresholds already hold, the document passes;
- the other, "short" keywords: membership in ``text.lower().split()`` (whitespace tokens with their
  punctuation attached), each found keyword adding its token count x its length;
- pass when distinct keywords >= N and hit characters / len(text) >= R.
As released, the script sends Chinese and Japanese down the same whitespace path, so their keywords
match only as whole whitespace-separated tokens (its CJK branch is unreachable and broken); this
baseline does the same. An empty text raises ZeroDivisionError, as in the script.
"""

from __future__ import annotations

import json
from pathlib import Path

from mmedkit.reference import STUDY_KEYWORD_THRESHOLDS

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "data" / "reference" / "mmedlm_keywords.json"

STUDY_KEYS = {"en": "en", "zh": "zh", "ja": "jp", "fr": "fr", "ru": "ru", "es": "es"}
"""Our ISO codes to the study's language keys."""

THRESHOLDS = STUDY_KEYWORD_THRESHOLDS


def load_study_keywords(path: Path = REFERENCE) -> dict[str, list[str]]:
    """The study's keyword lists per ISO code, merged and lower-cased as the script does."""
    if not path.is_file():
        raise FileNotFoundError(f"the study's keyword lists are not at {path} (../shared/data/reference)")
    raw = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, list[str]] = {}
    for code, key in STUDY_KEYS.items():
        if key not in raw or not isinstance(raw[key], dict):
            raise ValueError(f"{path}: no keyword lists for language key {key!r}")
        merged: list[str] = []
        for name, words in raw[key].items():
            if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
                raise ValueError(f"{path}: {key}.{name} is not a list of strings")
            merged.extend(words)
        out[code] = [w.lower() for w in dict.fromkeys(merged)]
    return out


class StudyKeywordFilter:
    """The study's per-language filter (one instance per language, like one run of its script)."""

    def __init__(self, language: str, keywords: list[str] | None = None) -> None:
        if language not in STUDY_KEYS:
            raise KeyError(f"unknown language {language!r}; known: {', '.join(STUDY_KEYS)}")
        words = keywords if keywords is not None else load_study_keywords()[language]
        self.language = language
        self.min_count, self.min_ratio = THRESHOLDS[language]
        self.long = [w for w in words if len(w) > 10 or (len(w) > 5 and len(w.split()) > 1)]
        self.short = [w for w in words if w not in self.long]

    def scan(self, text: str) -> tuple[int, float, bool]:
        """``(distinct keywords, hit characters / length, passes)`` as the script computes them."""
        lower = text.lower()
        distinct = chars = 0
        for word in self.long:
            if word in lower:
                distinct += 1
                chars += lower.count(word) * len(word)
        if distinct >= self.min_count and chars / len(text) >= self.min_ratio:
            return distinct, chars / len(text), True
        tokens = lower.split()
        for word in self.short:
            if word in tokens:
                distinct += 1
                chars += tokens.count(word) * len(word)
        ratio = chars / len(text)
        return distinct, ratio, distinct >= self.min_count and ratio >= self.min_ratio

    def keep(self, text: str) -> bool:
        """Whether the study's filter keeps ``text``."""
        return self.scan(text)[2]
