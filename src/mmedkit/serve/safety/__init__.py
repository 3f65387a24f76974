"""The deterministic safety layer of the chat service: language detection, the red-flag screen over a
whole conversation, system prompt, disclaimer and dose note.

Everything language-specific lives in data files (``serve/data/safety``, with reviewers' notes):
``rules.yaml`` names the red-flag categories and the concept combinations that raise them;
``<code>.yaml`` gives, per language, the phrasings of every concept, the negation and context cues
and the texts (system prompt, disclaimer, emergency messages). The screen runs before any model call
and needs no model::

    from mmedkit.serve.safety import screen_conversation
    verdict = screen_conversation(messages)  # None, or .category .language .evidence .turn .message

Modules: ``data`` (reading the files), ``matcher`` (one language's phrasings and negation), ``context``
(history, hypotheticals, education), ``spelling`` (misspellings), ``detect`` (language), ``policy``
(the conversation screen and the texts).
"""

from mmedkit.serve.safety.data import SafetyDataError, default_data_dir
from mmedkit.serve.safety.detect import LanguageDetector
from mmedkit.serve.safety.matcher import LanguagePack
from mmedkit.serve.safety.policy import (
    Evidence,
    RedFlag,
    SafetyPolicy,
    Verdict,
    default_policy,
    last_user_text,
    screen_conversation,
)

__all__ = ["Evidence", "LanguageDetector", "LanguagePack", "RedFlag", "SafetyDataError", "SafetyPolicy", "Verdict",
           "default_data_dir", "default_policy", "last_user_text", "screen_conversation"]
