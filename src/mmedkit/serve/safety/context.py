"""Time and person context of a message: symptoms told as remote history (``a stroke ten years ago``),
as a hypothetical (``what should I do if someone collapses``) or in an educational frame (``an essay on
suicide prevention``, ``risk factors for stroke``) are not an emergency now; a present cue (``now``,
``again``, ``сейчас``) in the symptom's own clause overrides them.

A cue silences the symptoms from the start of its clause to the end of its sentence, so
``I have chest pain and sweating, what if it's a heart attack?`` still counts the chest pain.
Cues of every language apply to every message (people mix languages).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from mmedkit.serve.safety.matcher import PUNCT, LanguagePack

_SENTENCE = re.compile(PUNCT)


@dataclass(frozen=True)
class Context:
    """Where a message's symptoms are out of context (see the module docstring)."""

    silenced: list[tuple[int, int]]
    present: list[tuple[int, int]]
    """Clauses with a present cue (exempt)."""
    clause_starts: list[int]

    @classmethod
    def of(cls, t: str, packs: Sequence[LanguagePack]) -> Context:
        """The context of normalized text ``t`` under the cues of ``packs``."""
        starts = sorted({0} | {e for p in packs for _, e in p.bounds(t)})
        ends = [m.start() for m in _SENTENCE.finditer(t)] + [len(t)]
        silenced, present = [], []
        for pack in packs:
            for kind, cue in pack.context.items():
                if cue is None:
                    continue
                for m in cue.finditer(t):
                    clause = starts[bisect_right(starts, m.start()) - 1]
                    if kind == "present":
                        nxt = bisect_right(starts, m.start())
                        present.append((clause, starts[nxt] if nxt < len(starts) else len(t)))
                    else:
                        silenced.append((clause, min(e for e in ends if e >= m.end())))
        return cls(silenced, present, starts)

    def out_of_context(self, start: int) -> bool:
        """Whether a symptom at ``start`` is silenced by a history, hypothetical or education cue."""
        if not any(s <= start < e for s, e in self.silenced):
            return False
        return not any(s <= start < e for s, e in self.present)
