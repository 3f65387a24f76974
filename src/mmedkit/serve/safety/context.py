"""Time and person context of a message: symptoms told as remote history (``a stroke ten years ago``),
as a hypothetical (``what should I do if someone collapses``) or in an educational frame (``an essay on
suicide prevention``, ``risk factors for stroke``) are not an emergency now; a present cue (``now``,
``again``, ``сейчас``) earlier in the symptom's own clause overrides them.

A history or hypothetical cue silences the symptoms from the start of its clause to the end of its
sentence, so ``I have chest pain and sweating, what if it's a heart attack?`` still counts the chest
pain; a resolution cue (``and now she's fine``) silences its whole sentence; an education cue (``essay``,
``for a first aid course``) frames the whole message.
Cues of every language apply to every message (people mix languages).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from mmedkit.serve.safety.matcher import PUNCT, LanguagePack

_SENTENCE = re.compile(PUNCT)
_QUESTION_END = re.compile(r"(?:[?？]|(?:か|吗|嗎|呢|かな|でしょうか)[。.!！]?)\s*$")


@dataclass(frozen=True)
class Context:
    """Where a message's symptoms are out of context (see the module docstring)."""

    silenced: list[tuple[int, int]]
    present: list[tuple[int, int]]
    """From a present cue to the end of its clause (exempt)."""
    questions: list[tuple[int, int]]
    """Clauses that ask a question (``stroke, what do I do?`` does not ask whether it is a stroke)."""

    @classmethod
    def of(cls, t: str, packs: Sequence[LanguagePack]) -> Context:
        """The context of normalized text ``t`` under the cues of ``packs``."""
        starts = sorted({0} | {e for p in packs for _, e in p.bounds(t)})
        ends = [m.start() for m in _SENTENCE.finditer(t)] + [len(t)]
        questions = [(start, end) for start, end in zip(starts, [*starts[1:], len(t)], strict=True)
                     if _QUESTION_END.search(t[start:end][-12:])]
        silenced, present = [], []
        for pack in packs:
            for kind, cue in pack.context.items():
                if cue is None:
                    continue
                for m in pack.finditer(cue, t):
                    clause = starts[bisect_right(starts, m.start()) - 1]
                    if kind == "present":
                        nxt = bisect_right(starts, m.start())
                        present.append((m.start(), starts[nxt] if nxt < len(starts) else len(t)))
                    elif kind == "education":
                        silenced.append((0, len(t)))
                    elif kind == "resolved":  # the whole sentence: "choked on water, coughed it up, fine now"
                        k = bisect_left(ends, m.end())
                        silenced.append((ends[k - 1] + 1 if k else 0, ends[k]))
                    else:
                        silenced.append((clause, ends[bisect_left(ends, m.end())]))
        return cls(silenced, present, questions)

    def out_of_context(self, start: int) -> bool:
        """Whether a symptom at ``start`` is silenced by a history, hypothetical or education cue."""
        if not any(s <= start < e for s, e in self.silenced):
            return False
        return not any(s <= start < e for s, e in self.present)

    def in_question(self, start: int) -> bool:
        """Whether the symptom at ``start`` is in a clause that asks a question."""
        return any(s <= start < e for s, e in self.questions)
