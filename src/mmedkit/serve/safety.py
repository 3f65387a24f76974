"""The deterministic safety layer of the chat service: language detection, red-flag screen,
system prompt, disclaimer and dose note.

Everything language-specific lives in data files (``serve/data/safety``): ``rules.yaml`` names
the red-flag categories and the concept combinations that raise them; ``<code>.yaml`` gives, per
language, the phrasings of every concept, the negation cues and the texts (system prompt,
disclaimer, emergency messages). The screen runs before any model call and needs no model:

* text and patterns are normalized alike (NFKC, case-folded, accents of Latin letters dropped,
  ``ё`` -> ``е``, curly apostrophes straightened);
* a concept is present when one of its ``terms`` matches and no negation cue governs it: a
  ``before`` cue at most ``window`` words (characters for Chinese and Japanese) earlier in the
  same clause, or an ``after`` pattern right behind it (Japanese ``胸の痛みはない``). Clauses end
  at punctuation and at ``breaks`` words (``but``, ``mais``, ``但是``). ``pseudo`` phrases
  (``not sure``, ``不知道``) and ``fixed`` phrasings, which carry their own negation
  (``can't breathe``, ``не могу дышать``), are never read as cues;
* a category is raised when all concepts of one of its rules are present.

Every language's phrasings are tried, whatever language the message is in, so a French message
typed with the English page selected is still screened; the message's own language's negation cues
apply to them too ("I'm not suicidal" is not raised by the French ``suicid...``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from mmedkit.config import RawConfig, join_key, read_yaml
from mmedkit.errors import ConfigError
from mmedkit.languages import CODES, get_language
from mmedkit.models.base import Message
from mmedkit.text import CYRILLIC, HAN, KANA, LATIN, normalize_loose, script_re

_TEXT_FIELDS = ("system_prompt", "disclaimer", "dose_note", "emergency_title", "emergency_call", "crisis")
_REVIEW_FIELDS = ("date", "by", "criteria")
_PUNCT = r"[.;:!?。；：！？\n…]"
_COMMAS = r"[,，]"
_KANA = script_re(KANA)
_HAN = script_re(HAN)
_CYRILLIC = script_re(CYRILLIC)
_LATIN = script_re(LATIN)
_MARKUP = re.compile(r"<[^<>]{0,500}>|&#?\w{1,10};|\b(?:https?|ftp)://\S+")
"""HTML tags, character references and URLs: not the language the user writes in."""


class SafetyDataError(ConfigError):
    """A safety data file is missing, malformed or inconsistent (the message names file, line and field)."""


def default_data_dir() -> Path:
    """The safety data shipped with mmedkit."""
    return Path(str(resources.files("mmedkit.serve").joinpath("data", "safety")))


# ---------------------------------------------------------------- normalization
def _mask(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """``text`` with the given spans blanked out (same length, so offsets still hold)."""
    chars = list(text)
    for s, e in spans:
        chars[s:e] = "_" * (e - s)
    return "".join(chars)


# ---------------------------------------------------------------- data loading
_MISSING = object()


class _Source:
    """A safety data file read through the config foundation, so errors name the line of a field.

    Fields are addressed as key lists (``["concepts", "chest_pain", "terms", 1]``) and named in messages
    with dots (``concepts.chest_pain.terms.1``); a missing field is reported at its nearest parent's line.
    """

    def __init__(self, path: Path) -> None:
        try:
            data, lines = read_yaml(path, mapping=False)
        except ConfigError as exc:
            raise SafetyDataError(str(exc)) from exc
        if not isinstance(data, dict):
            raise SafetyDataError(f"{path}:1: expected a mapping at the top level")
        self.data = data
        self.raw = RawConfig(data, {**{key: f"{path}:{n}" for key, n in lines.items()}, "": f"{path}:1"}, str(path))

    def error(self, keys: Sequence[str | int], message: str) -> SafetyDataError:
        where = ".".join(str(k) for k in keys)
        return SafetyDataError(f"{self.raw.where(join_key(keys))}: {where}: {message}")

    def get(self, keys: Sequence[str | int], kind: type | tuple[type, ...], default: Any = ...) -> Any:
        value = self.raw.get(join_key(keys), _MISSING)
        if value is _MISSING:
            if default is not ...:
                return default
            raise self.error(keys, "missing")
        if not isinstance(value, kind):
            names = " or ".join(t.__name__ for t in (kind if isinstance(kind, tuple) else (kind,)))
            raise self.error(keys, f"expected {names}, got {type(value).__name__}")
        return value

    def patterns(self, keys: Sequence[str | int], bounded: bool, default: Any = ...) -> tuple[re.Pattern[str], ...]:
        items = self.get(keys, list, default)
        for i, raw in enumerate(items):
            if not isinstance(raw, str) or not raw.strip():
                raise self.error([*keys, i], "expected a non-empty string")
        return tuple(self.regex([*keys, i], raw, bounded) for i, raw in enumerate(items))

    def regex(self, keys: Sequence[str | int], raw: str, bounded: bool) -> re.Pattern[str]:
        """``raw`` normalized like messages and compiled; word-bounded for space-delimited languages."""
        body = normalize_loose(raw, casefold=False)
        if bounded:
            body = rf"(?<!\w)(?:{body})(?!\w)"
        try:
            return re.compile(body, re.IGNORECASE)
        except re.error as exc:
            raise self.error(keys, f"bad regular expression {raw!r}: {exc}") from exc


def _alternation(patterns: Sequence[re.Pattern[str]]) -> re.Pattern[str] | None:
    return re.compile("|".join(f"(?:{p.pattern})" for p in patterns), re.IGNORECASE) if patterns else None


@dataclass(frozen=True)
class RedFlag:
    """A red flag raised by a message."""

    category: str
    language: str
    """Language of the phrasing that matched."""
    evidence: tuple[str, ...]
    """The matched phrases (normalized text), one per concept of the rule."""


@dataclass(frozen=True)
class Scan:
    """One language's view of a normalized message (see :meth:`LanguagePack.scan`)."""

    masked: str
    bounds: list[tuple[int, int]]
    fixed_hits: list[tuple[str, re.Match[str]]]
    term_hits: list[tuple[str, re.Match[str]]]


@dataclass
class LanguagePack:
    """Phrasings, negation cues and texts of one language."""

    code: str
    words: bool
    """True for space-delimited languages: windows count words, patterns get word boundaries."""
    window: int
    before: re.Pattern[str] | None
    after: tuple[re.Pattern[str], ...]
    pseudo: tuple[re.Pattern[str], ...]
    breaks: re.Pattern[str] | None
    terms: dict[str, tuple[re.Pattern[str], ...]]
    fixed: dict[str, tuple[re.Pattern[str], ...]]
    texts: dict[str, str]
    advice: dict[str, str]
    dose: re.Pattern[str] | None
    review: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def _boundary(self) -> re.Pattern[str]:
        parts = [_PUNCT, _COMMAS]  # not 、: Chinese and Japanese list symptoms with it
        if self.breaks is not None:
            parts.append(self.breaks.pattern)
        return re.compile("|".join(f"(?:{p})" for p in parts), re.IGNORECASE)

    def scan(self, t: str) -> Scan:
        """Matches of this language's phrasings in normalized text ``t``, and ``t`` masked for negation cues."""
        fixed_hits = [(name, m) for name, pats in self.fixed.items() for p in pats for m in p.finditer(t)]
        term_hits = [(name, m) for name, pats in self.terms.items() for p in pats for m in p.finditer(t)]
        # Negation cues are looked for in the text around a match with every other match and every
        # pseudo-negation blanked out: "no chest pain or breathlessness" keeps "no" within reach of
        # both symptoms, and "can't breathe" lends its "can't" to nothing else.
        masked = _mask(t, [m.span() for _, m in fixed_hits + term_hits]
                       + [m.span() for p in self.pseudo for m in p.finditer(t)])
        bounds = [m.span() for m in self._boundary.finditer(masked)]
        return Scan(masked, bounds, fixed_hits, term_hits)

    def negated(self, scan: Scan, start: int, end: int) -> bool:
        """Whether a negation cue of this language governs ``t[start:end]``."""
        masked, bounds = scan.masked, scan.bounds
        clause_start = max((e for s, e in bounds if e <= start), default=0)
        clause_end = min((s for s, e in bounds if s >= end), default=len(masked))
        before = masked[clause_start:start]
        if self.before is not None:
            window = " ".join(before.split()[-self.window:]) if self.words else before[-self.window:]
            if self.before.search(window):
                return True
        after = masked[end:clause_end][:self.window]
        return any(p.match(after) for p in self.after)

    def concepts(self, text: str, negators: Sequence[tuple[LanguagePack, Scan]] = ()) -> dict[str, list[str]]:
        """Concepts present (not negated) in ``text``, with the phrases that matched.

        A match counts as negated when this language's cues negate it, or those of ``negators``
        (the message's own language, when these phrasings are another language's).
        """
        t = normalize_loose(text)
        scan = self.scan(t)
        found: dict[str, list[str]] = {}
        for name, m in scan.fixed_hits:
            found.setdefault(name, []).append(m.group())
        for name, m in scan.term_hits:
            if not self.negated(scan, *m.span()) and not any(p.negated(s, *m.span()) for p, s in negators):
                found.setdefault(name, []).append(m.group())
        return found

    def text(self, name: str) -> str:
        """One of the pack's texts (``disclaimer``, ``system_prompt``, ...)."""
        return self.texts[name]


def _load_pack(path: Path, concept_names: set[str], categories: Sequence[str]) -> LanguagePack:
    src = _Source(path)
    code = src.get(["language"], str)
    if code != path.stem:
        raise src.error(["language"], f"is {code!r} but the file is named {path.name}")
    try:
        words = get_language(code).space_delimited
    except KeyError as exc:
        raise src.error(["language"], str(exc)) from exc
    review = src.get(["review"], dict)
    for key in _REVIEW_FIELDS:
        if not review.get(key):
            raise src.error(["review", key], "missing: every safety file records who reviewed it, when, and how")
    window = src.get(["negation", "window"], int)
    before = src.patterns(["negation", "before"], words, ())
    terms: dict[str, tuple[re.Pattern[str], ...]] = {}
    fixed: dict[str, tuple[re.Pattern[str], ...]] = {}
    declared = src.get(["concepts"], dict)
    for name in sorted(concept_names - set(declared)):
        unused = [n for n in declared if n not in concept_names]
        hint = f" ({unused[0]!r} is not used by any rule: misspelt?)" if unused else ""
        raise src.error(["concepts", *unused[:1]], f"concept {name!r} (used by rules.yaml) is not defined{hint}")
    for name in declared:
        if name not in concept_names:
            raise src.error(["concepts", name], "not used by any rule in rules.yaml")
        src.get(["concepts", name], dict)
        terms[name] = src.patterns(["concepts", name, "terms"], words, ())
        fixed[name] = src.patterns(["concepts", name, "fixed"], words, ())
        if not terms[name] and not fixed[name]:
            raise src.error(["concepts", name], "needs at least one of terms / fixed")
    texts = {k: " ".join(src.get(["texts", k], str).split()) for k in _TEXT_FIELDS}
    advice = {c: " ".join(src.get(["advice", c], str).split()) for c in categories}
    dose = src.regex(["dose_pattern"], src.get(["dose_pattern"], str), False) \
        if "dose_pattern" in src.data else None
    return LanguagePack(
        code=code, words=words, window=window,
        before=_alternation(before),
        after=src.patterns(["negation", "after"], False, ()),
        pseudo=src.patterns(["negation", "pseudo"], words, ()),
        breaks=_alternation(src.patterns(["negation", "breaks"], words, ())),
        terms=terms, fixed=fixed, texts=texts, advice=advice, dose=dose, review=review)


def _load_rules(path: Path) -> dict[str, list[tuple[str, ...]]]:
    src = _Source(path)
    cats = src.get(["categories"], dict)
    rules: dict[str, list[tuple[str, ...]]] = {}
    for cat in cats:
        options = src.get(["categories", cat], list)
        if not options:
            raise src.error(["categories", cat], "needs at least one rule")
        rules[cat] = []
        for i, _ in enumerate(options):
            names = src.get(["categories", cat, i], list)
            if not names or not all(isinstance(n, str) for n in names):
                raise src.error(["categories", cat, i], "a rule is a non-empty list of concept names")
            rules[cat].append(tuple(names))
    return rules


# ---------------------------------------------------------------- language detection
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


# ---------------------------------------------------------------- policy
class SafetyPolicy:
    """Loaded safety data for all languages, and the operations the service needs."""

    def __init__(self, packs: dict[str, LanguagePack], rules: dict[str, list[tuple[str, ...]]],
                 detector: LanguageDetector | None = None, source: Path | None = None) -> None:
        self.packs = packs
        self.rules = rules
        self.source = source
        self.detector = detector or LanguageDetector(tuple(packs))

    @classmethod
    def load(cls, folder: str | Path | None = None) -> SafetyPolicy:
        """Read ``rules.yaml`` and one ``<code>.yaml`` per language from ``folder`` (default: shipped data)."""
        root = Path(folder) if folder else default_data_dir()
        rules = _load_rules(root / "rules.yaml")
        concept_names = {c for options in rules.values() for rule in options for c in rule}
        packs = {}
        for code in CODES:
            path = root / f"{code}.yaml"
            if not path.is_file():
                raise SafetyDataError(f"{path}: missing: every language needs its safety file")
            packs[code] = _load_pack(path, concept_names, list(rules))
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

    def screen(self, text: str, language: str | None = None) -> RedFlag | None:
        """The first red flag ``text`` raises, trying ``language``'s phrasings first (default: the detected
        language), then the others."""
        language = language or self.detect_language(text)
        order = [language] if language in self.packs else []
        order += [c for c in self.packs if c != language]
        own = self.packs.get(language or "")
        negators = [(own, own.scan(normalize_loose(text)))] if own is not None else []
        for code in order:
            present = self.packs[code].concepts(text, negators if code != language else ())
            if not present:
                continue
            for category, options in self.rules.items():
                for rule in options:
                    if all(c in present for c in rule):
                        return RedFlag(category, code, tuple(present[c][0] for c in rule))
        return None

    def emergency_message(self, flag: RedFlag, language: str) -> str:
        """The answer to a red flag, in ``language``: what it may be, what to do, whom to call."""
        pack = self.pack(language)
        parts = [pack.text("emergency_title"), pack.advice[flag.category], pack.text("emergency_call")]
        if flag.category == "suicide":
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


def last_user_text(messages: Sequence[Message]) -> str:
    """Content of the last user message ('' when there is none)."""
    for m in reversed(messages):
        if m["role"] == "user":
            return m["content"]
    return ""
