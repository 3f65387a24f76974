"""The safety policy the service applies: the red-flag screen over a whole conversation, and the texts
(system prompt, disclaimer, dose note, emergency answer) in the user's language.

A message is screened with every language's phrasings (people mix languages): each match is kept
unless a negation cue of a language of the same kind (space-delimited or not) governs it
(:mod:`~mmedkit.serve.safety.matcher`) or a history, hypothetical or educational cue puts it out of
the present (:mod:`~mmedkit.serve.safety.context`); misspelled words are corrected first
(:mod:`~mmedkit.serve.safety.spelling`), and characters typed for a same-sounding one (Chinese ``心藏``
for ``心脏``, a language file's ``homophones``) read as meant. A conversation is screened turn by turn: the
concepts of every user turn accumulate (a concept negated later is dropped), and a category is raised at the first user
turn that completes one of its rules, unless the assistant's next turn is already an emergency answer
(then the symptoms so far start over: the person is not sent the same alert for every later message).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from mmedkit.languages import CODES
from mmedkit.models.base import Message
from mmedkit.serve.safety.context import Context
from mmedkit.serve.safety.data import Rules, SafetyDataError, default_data_dir, load_pack, load_rules
from mmedkit.serve.safety.detect import LanguageDetector
from mmedkit.serve.safety.matcher import LanguagePack
from mmedkit.serve.safety.spelling import SpellFixer, lexicon_of
from mmedkit.text import normalize_loose


@dataclass(frozen=True)
class Evidence:
    """One concept of a raised rule, as found in the conversation."""

    concept: str
    text: str
    """The matched phrase (normalized text, misspellings corrected)."""
    language: str
    """Language of the phrasing that matched."""
    turn: int
    """Index in the messages of the user turn it was found in."""


@dataclass(frozen=True)
class Verdict:
    """An emergency found in a conversation, with why (for the response extension and reviewers)."""

    category: str
    language: str
    """Language of the user turn that raised it (the emergency answer's language)."""
    turn: int
    """Index in the messages of the user turn that completed the rule."""
    found: tuple[Evidence, ...]
    message: str
    """The emergency answer in ``language``: what it may be, what to do, whom to call."""

    @property
    def evidence(self) -> str:
        """The matched phrases, one per concept of the rule (``chest pressure + cold sweat``)."""
        return " + ".join(e.text for e in self.found)


@dataclass(frozen=True)
class RedFlag:
    """A red flag raised by one message (see :meth:`SafetyPolicy.screen`)."""

    category: str
    language: str
    """Language of the first phrasing that matched."""
    evidence: tuple[str, ...]
    """The matched phrases, one per concept of the rule."""


@dataclass(frozen=True)
class Findings:
    """What one message says: concepts present (phrase, language) and concepts it negates."""

    present: dict[str, tuple[str, str]]
    negated: frozenset[str]


class SafetyPolicy:
    """Loaded safety data for all languages, and the operations the service needs."""

    def __init__(self, packs: dict[str, LanguagePack], rules: Rules, detector: LanguageDetector | None = None,
                 source: Path | None = None) -> None:
        self.packs = packs
        self.rules = rules
        self.source = source
        self.detector = detector or LanguageDetector(tuple(packs))
        words: set[str] = set()
        stems: set[str] = set()
        for pack in packs.values():
            if pack.words:
                w, s = lexicon_of(pack.patterns())
                words |= w
                stems |= s
        self.speller = SpellFixer(words, stems)
        self._homophones = str.maketrans({k: v for pack in packs.values() for k, v in pack.homophones.items()})
        self.findings = lru_cache(maxsize=4096)(self._findings)
        """:meth:`_findings`, remembered per text (a conversation's earlier turns come back with every request)."""

    @classmethod
    def load(cls, folder: str | Path | None = None) -> SafetyPolicy:
        """Read ``rules.yaml`` and one ``<code>.yaml`` per language from ``folder`` (default: shipped data)."""
        root = Path(folder) if folder else default_data_dir()
        rules = load_rules(root / "rules.yaml")
        concept_names = {c for options in rules.values() for rule in options for c in rule}
        packs = {}
        for code in CODES:
            path = root / f"{code}.yaml"
            if not path.is_file():
                raise SafetyDataError(f"{path}: missing: every language needs its safety file")
            packs[code] = load_pack(path, concept_names, list(rules))
        return cls(packs, rules, source=root)

    @property
    def languages(self) -> tuple[str, ...]:
        """Codes of the loaded languages."""
        return tuple(self.packs)

    def pack(self, language: str | None) -> LanguagePack:
        """The pack of ``language`` (English when unknown)."""
        return self.packs.get(language or "", self.packs.get("en") or next(iter(self.packs.values())))

    def detect_language(self, text: str, hint: str | None = None) -> str:
        """Language of a user message (see :class:`LanguageDetector`)."""
        return self.detector.detect(text, hint)

    # ------------------------------------------------------------ the screen
    def _findings(self, text: str) -> Findings:
        t = self.speller.fix(normalize_loose(text)).translate(self._homophones)
        own = self.detect_language(text)
        packs = sorted(self.packs.values(), key=lambda p: p.code != own)  # the message's own phrasings first
        scans = {p.code: p.scan(t) for p in packs}
        # Context cues of the message's own language, and of the languages of other scripts only:
        # the French "these" (a thesis) must not make an English message educational.
        script = self.pack(own).script
        context = Context.of(t, [p for p in packs if p.code == own or p.script != script])
        present: dict[str, tuple[str, str]] = {}
        negated: set[str] = set()
        for pack in packs:
            peers = [(q, scans[q.code]) for q in packs if q.words == pack.words]
            for hit in sorted(scans[pack.code].hits, key=lambda h: h.start):
                if hit.kind != "fixed" and any(q.negated(s, hit.start, hit.end) for q, s in peers):
                    negated.add(hit.concept)
                elif hit.kind == "names" and context.in_question(hit.start):
                    continue
                elif not context.out_of_context(hit.start):
                    present.setdefault(hit.concept, (hit.text, pack.code))
        return Findings(present, frozenset(negated - present.keys()))

    def _raised(self, state: dict[str, Evidence], turn: int) -> tuple[str, tuple[Evidence, ...]] | None:
        for category, options in self.rules.items():
            for rule in options:
                if all(c in state for c in rule) and any(state[c].turn == turn for c in rule):
                    return category, tuple(state[c] for c in rule)
        return None

    def screen_conversation(self, messages: Sequence[Message], hint: str | None = None) -> Verdict | None:
        """The first emergency the user turns of ``messages`` raise, together or alone, that no emergency answer
        follows yet (None: none).

        ``hint`` is the page's language (it breaks ties in language detection).
        """
        state: dict[str, Evidence] = {}
        for i, m in enumerate(messages):
            if m["role"] != "user" or not m["content"].strip():
                continue
            found = self.findings(m["content"])
            for concept in found.negated:
                state.pop(concept, None)
            for concept, (text, code) in found.present.items():
                state[concept] = Evidence(concept, text, code, i)
            raised = self._raised(state, i) if found.present else None
            if raised is None:
                continue
            if self._answered(messages, i):  # shown already: its symptoms start over
                state.clear()
                continue
            category, evidence = raised
            language = self.detect_language(m["content"], hint)
            return Verdict(category, language, i, evidence, self.emergency_message(category, language))
        return None

    def _answered(self, messages: Sequence[Message], turn: int) -> bool:
        """Whether the assistant turn after user turn ``turn`` is an emergency answer (any language's)."""
        nxt = next((m for m in messages[turn + 1:] if m["role"] != "system"), None)
        return nxt is not None and nxt["role"] == "assistant" and any(
            nxt["content"].lstrip().startswith(p.text("emergency_title")) for p in self.packs.values())

    def screen(self, text: str, language: str | None = None) -> RedFlag | None:
        """The red flag one message raises (None: none). Every language's phrasings are tried whatever
        ``language`` says (it is kept for callers that know the message's language)."""
        verdict = self.screen_conversation([{"role": "user", "content": text}], language)
        if verdict is None:
            return None
        return RedFlag(verdict.category, verdict.found[0].language, tuple(e.text for e in verdict.found))

    # ------------------------------------------------------------ texts
    def emergency_message(self, flag: RedFlag | Verdict | str, language: str) -> str:
        """The answer to a red flag (or category), in ``language``: what it may be, what to do, whom to call."""
        category = flag if isinstance(flag, str) else flag.category
        pack = self.pack(language)
        parts = [pack.text("emergency_title"), pack.advice[category], pack.text("emergency_call")]
        if category == "suicide":
            parts.append(pack.text("crisis"))
        return "\n\n".join(parts)

    def system_prompt(self, language: str) -> str:
        """The system prompt in ``language``."""
        return self.pack(language).text("system_prompt")

    def disclaimer(self, language: str) -> str:
        """The disclaimer appended to every answer, in ``language``."""
        return self.pack(language).text("disclaimer")

    def dose_note(self, answer: str, language: str) -> str | None:
        """A warning in ``language`` when ``answer`` names amounts or doses (any language's units)."""
        for pack in self.packs.values():
            if pack.dose is not None and pack.dose.search(normalize_loose(answer)):
                return self.pack(language).text("dose_note")
        return None

    def prepare(self, messages: Sequence[Message], language: str) -> list[Message]:
        """The conversation as the model sees it: the service's system prompt replaces any client one."""
        return [{"role": "system", "content": self.system_prompt(language)},
                *(dict(m) for m in messages if m["role"] != "system")]


@lru_cache(maxsize=1)
def default_policy() -> SafetyPolicy:
    """The policy of the shipped data (loaded once)."""
    return SafetyPolicy.load()


def screen_conversation(messages: Sequence[Message], hint: str | None = None) -> Verdict | None:
    """:meth:`SafetyPolicy.screen_conversation` with the shipped data."""
    return default_policy().screen_conversation(messages, hint)


def last_user_text(messages: Sequence[Message]) -> str:
    """Content of the last user message ('' when there is none)."""
    for m in reversed(messages):
        if m["role"] == "user":
            return m["content"]
    return ""
