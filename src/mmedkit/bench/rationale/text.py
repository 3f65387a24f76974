"""From a model's output to the tokens that text metrics count.

The rationale is what a model writes before its answer: in the study's format
``###Rationale: ... ###Answer: OPTION B IS CORRECT.``. Tokens come from the language registry's
segmenter (jieba for Chinese, janome for Japanese, Unicode words elsewhere), so accents,
Cyrillic and CJK text are kept, and are case-folded unless asked otherwise.
"""

from __future__ import annotations

import re

from mmedkit.languages import get_language

_RATIONALE_HEAD = re.compile(r"^\s*#*\s*rationale\s*[:：]\s*", re.IGNORECASE)
_CUT = re.compile(
    r"#{2,}\s*answer\s*[:：]"  # the study's answer block
    r"|\n\s*#{2,}\s*(?:instruction|input|question|response)\b"  # a model that keeps generating prompts
    r"|\bOPTION\s+[A-Z](?:\s*,\s*[A-Z])*\s+(?:IS|ARE)\s+CORRECT\b",  # the answer sentence without its block
    re.IGNORECASE,
)


def extract_rationale(output: str | None) -> str:
    """The explanation part of a generated answer (empty when the model wrote none).

    Drops a leading ``###Rationale:`` marker and cuts at the first ``###Answer:`` block, prompt
    section or ``OPTION B IS CORRECT`` sentence.
    """
    text = _RATIONALE_HEAD.sub("", output or "", count=1)
    m = _CUT.search(text)
    return (text[:m.start()] if m else text).strip()


def tokenize(text: str, language: str, *, casefold: bool = True) -> list[str]:
    """Segment ``text`` with ``language``'s registry segmenter; fold case unless ``casefold`` is False."""
    tokens = get_language(language).segment(text)
    return [t.casefold() for t in tokens] if casefold else tokens
