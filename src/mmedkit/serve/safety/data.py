"""Reading the safety data files (``serve/data/safety``): ``rules.yaml`` and one ``<code>.yaml`` per language.

Every problem is a :class:`SafetyDataError` naming the file, the line and the field.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from mmedkit.config import RawConfig, join_key, read_yaml
from mmedkit.errors import ConfigError
from mmedkit.languages import get_language
from mmedkit.serve.safety.matcher import CONTEXT_KINDS, LanguagePack, alternation
from mmedkit.text import normalize_loose

TEXT_FIELDS = ("system_prompt", "disclaimer", "dose_note", "emergency_title", "emergency_call", "crisis")
REVIEW_FIELDS = ("date", "by", "criteria")
Rules = dict[str, list[tuple[str, ...]]]
"""Category -> the concept combinations that raise it."""


class SafetyDataError(ConfigError):
    """A safety data file is missing, malformed or inconsistent (the message names file, line and field)."""


def default_data_dir() -> Path:
    """The safety data shipped with mmedkit."""
    return Path(str(resources.files("mmedkit.serve").joinpath("data", "safety")))


_MISSING = object()
_ESCAPE_OR_TEXT = re.compile(r"\\.|[^\\]+")


class Source:
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

    def patterns(self, keys: Sequence[str | int], bounded: bool, default: Any = ...,
                 phrasing: bool = False) -> tuple[re.Pattern[str], ...]:
        items = self.get(keys, list, default)
        for i, raw in enumerate(items):
            if not isinstance(raw, str) or not raw.strip():
                raise self.error([*keys, i], "expected a non-empty string")
        return tuple(self.regex([*keys, i], raw, bounded, phrasing) for i, raw in enumerate(items))

    def regex(self, keys: Sequence[str | int], raw: str, bounded: bool, phrasing: bool = False) -> re.Pattern[str]:
        """``raw`` normalized like messages and compiled; word-bounded for space-delimited languages.

        A ``phrasing`` (run over whole messages) is case-folded instead of compiled case-insensitive and
        gets no left word boundary: both make Python's regex engine scan several times faster, and
        :meth:`LanguagePack.scan` checks the left boundary itself.
        """
        body = normalize_loose(raw, casefold=False)
        if phrasing:
            body = _ESCAPE_OR_TEXT.sub(lambda m: m.group() if m.group()[0] == "\\" else m.group().casefold(), body)
        if bounded:
            body = rf"(?:{body})(?!\w)" if phrasing else rf"(?<!\w)(?:{body})(?!\w)"
        try:
            return re.compile(body, 0 if phrasing else re.IGNORECASE)
        except re.error as exc:
            raise self.error(keys, f"bad regular expression {raw!r}: {exc}") from exc


def load_pack(path: Path, concept_names: set[str], categories: Sequence[str]) -> LanguagePack:
    """One language's file, checked against the concepts ``rules.yaml`` uses."""
    src = Source(path)
    code = src.get(["language"], str)
    if code != path.stem:
        raise src.error(["language"], f"is {code!r} but the file is named {path.name}")
    try:
        words = get_language(code).space_delimited
    except KeyError as exc:
        raise src.error(["language"], str(exc)) from exc
    review = src.get(["review"], dict)
    for key in REVIEW_FIELDS:
        if not review.get(key):
            raise src.error(["review", key], "missing: every safety file records who reviewed it, when, and how")
    terms: dict[str, tuple[re.Pattern[str], ...]] = {}
    fixed: dict[str, tuple[re.Pattern[str], ...]] = {}
    names: dict[str, tuple[re.Pattern[str], ...]] = {}
    near: dict[str, tuple[tuple[re.Pattern[str], re.Pattern[str]], ...]] = {}
    declared = src.get(["concepts"], dict)
    for name in sorted(concept_names - set(declared)):
        unused = [n for n in declared if n not in concept_names]
        hint = f" ({unused[0]!r} is not used by any rule: misspelt?)" if unused else ""
        raise src.error(["concepts", *unused[:1]], f"concept {name!r} (used by rules.yaml) is not defined{hint}")
    for name in declared:
        if name not in concept_names:
            raise src.error(["concepts", name], "not used by any rule in rules.yaml")
        src.get(["concepts", name], dict)
        terms[name] = src.patterns(["concepts", name, "terms"], words, (), phrasing=True)
        fixed[name] = src.patterns(["concepts", name, "fixed"], words, (), phrasing=True)
        names[name] = src.patterns(["concepts", name, "names"], words, (), phrasing=True)
        pairs = []
        for i, pair in enumerate(src.get(["concepts", name, "near"], list, [])):
            if not isinstance(pair, list) or len(pair) != 2:
                raise src.error(["concepts", name, "near", i], "a near pair is a list of two patterns")
            pats = src.patterns(["concepts", name, "near", i], words, phrasing=True)
            pairs.append((pats[0], pats[1]))
        near[name] = tuple(pairs)
        if not (terms[name] or fixed[name] or names[name] or near[name]):
            raise src.error(["concepts", name], "needs at least one of terms / fixed / names / near")
    context = {kind: alternation(src.patterns(["context", kind], words, (), phrasing=True), fold=True)
               for kind in CONTEXT_KINDS}
    texts = {k: " ".join(src.get(["texts", k], str).split()) for k in TEXT_FIELDS}
    advice = {c: " ".join(src.get(["advice", c], str).split()) for c in categories}
    homophones = src.get(["homophones"], dict, {})
    for wrong, right in homophones.items():
        if not (isinstance(wrong, str) and isinstance(right, str) and len(wrong) == len(right) == 1):
            raise src.error(["homophones", str(wrong)], "maps one character to one character")
    dose = src.regex(["dose_pattern"], src.get(["dose_pattern"], str), False) if "dose_pattern" in src.data else None
    return LanguagePack(
        code=code, words=words, window=src.get(["negation", "window"], int),
        before=alternation(src.patterns(["negation", "before"], words, ())),
        after=src.patterns(["negation", "after"], False, ()),
        pseudo=src.patterns(["negation", "pseudo"], words, (), phrasing=True),
        breaks=src.patterns(["negation", "breaks"], words, (), phrasing=True),
        joins=alternation(src.patterns(["negation", "joins"], words, ())),
        answers=alternation(src.patterns(["negation", "answers"], words, ())),
        names=names, near=near, near_window=src.get(["near_window"], int, 7 if words else 12),
        context=context, terms=terms, fixed=fixed, texts=texts, advice=advice, dose=dose, review=review,
        homophones=dict(homophones))


def load_rules(path: Path) -> Rules:
    """``rules.yaml``: every category and the concept combinations that raise it."""
    src = Source(path)
    cats = src.get(["categories"], dict)
    rules: Rules = {}
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
