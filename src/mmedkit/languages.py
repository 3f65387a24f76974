"""One registry of the six MMed languages: codes, names, segmenters and data hooks.

Every stage looks languages up here, so that adding a language (or changing how one is
segmented) happens in exactly one place.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

from mmedkit.text import UNSPACED

_CJK_CHAR = f"[{UNSPACED}]"  # one character of a script written without spaces
_WORD_RE = re.compile(r"\w+(?:['’\-]\w+)*", re.UNICODE)
_CJK_SPLIT_RE = re.compile(rf"{_CJK_CHAR}|(?:(?!{_CJK_CHAR})[^\W\d_])+|\d+(?:[.,]\d+)*", re.UNICODE)
_CJK_PUNCT_RE = re.compile(r"[\u3000-\u303f\uff00-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]")

Segmenter = Callable[[str], list[str]]
_JA_CHOOSE_RE = re.compile(r"([1-9１-９])\s*つ選べ")


def no_answer_count(question: str) -> int | None:
    """Questions of most languages do not say how many options to choose."""
    return None


def ja_answer_count(question: str) -> int | None:
    """Japanese exam questions say how many options to pick: ``2つ選べ`` ("choose two")."""
    m = _JA_CHOOSE_RE.search(question)
    return int(m.group(1).translate(str.maketrans("１２３４５６７８９", "123456789"))) if m else None


def segment_words(text: str) -> list[str]:
    """Split space-delimited text into words (Unicode-aware, keeps hyphenated words whole)."""
    return _WORD_RE.findall(text)


def segment_cjk(text: str) -> list[str]:
    """Split Chinese/Japanese text into characters; Latin words and numbers stay whole.

    Character-level units are the standard way to compute n-gram metrics for Chinese and
    Japanese when no dictionary segmenter is installed.
    """
    return [t for t in _CJK_SPLIT_RE.findall(text) if not _CJK_PUNCT_RE.fullmatch(t)]


_HAS_WORD_CHAR = re.compile(r"\w", re.UNICODE)


class DictionarySegmenter:
    """A dictionary-based word segmenter from an optional package, loaded once on first use.

    Calling it returns the package's words without punctuation or spaces; :meth:`raw` returns
    every token the package produced. When the package is not installed, calls fall back to
    ``fallback`` (character units for Chinese and Japanese) and :attr:`name` says so.
    """

    def __init__(self, package: str, make: Callable[[], Segmenter], fallback: Segmenter) -> None:
        self.package = package
        self._make = make
        self.fallback = fallback
        self._tokenize: Segmenter | None = None
        self._missing: str | None = None
        self._lock = threading.Lock()

    def _load(self) -> Segmenter | None:
        with self._lock:
            if self._tokenize is None and self._missing is None:
                try:
                    self._tokenize = self._make()
                except ImportError as exc:
                    self._missing = str(exc)
            return self._tokenize

    @property
    def available(self) -> bool:
        """Whether the package is installed (and loads)."""
        return self._load() is not None

    @property
    def name(self) -> str:
        """``jieba 0.42.1``, or the fallback's name when the package is missing (recorded in results)."""
        if self._load() is None:
            return f"{self.fallback.__name__} (fallback: {self.package} is not installed)"
        try:
            return f"{self.package} {metadata.version(self.package)}"
        except metadata.PackageNotFoundError:  # importable without installed metadata (a source checkout)
            return f"{self.package} (version unknown)"

    def raw(self, text: str) -> list[str]:
        """The package's tokens, punctuation and spaces included; ImportError when it is missing."""
        tokenize = self._load()
        if tokenize is None:
            raise ImportError(f"{self.package} is not installed ({self._missing}): pip install {self.package}")
        return tokenize(text)

    def __call__(self, text: str) -> list[str]:
        if self._load() is None:
            return self.fallback(text)
        return [t for t in self.raw(text) if _HAS_WORD_CHAR.search(t)]


def _make_jieba() -> Segmenter:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    return lambda text: tokenizer.lcut(text)


def _make_janome() -> Segmenter:
    from janome.tokenizer import Tokenizer

    tokenizer: Any = Tokenizer(wakati=True)
    lock = threading.Lock()  # janome's tokenizer keeps per-call state

    def tokenize(text: str) -> list[str]:
        with lock:
            return [str(t) for t in tokenizer.tokenize(text, wakati=True)]

    return tokenize


segment_zh = DictionarySegmenter("jieba", _make_jieba, segment_cjk)
"""Chinese words with jieba (default dictionary, HMM for unknown words); characters without it."""
segment_ja = DictionarySegmenter("janome", _make_janome, segment_cjk)
"""Japanese words with janome (MeCab IPADIC dictionary, pure Python); characters without it."""


@dataclass(frozen=True)
class Language:
    """A language known to mmedkit."""

    code: str
    """ISO 639-1 code (``en``)."""
    name: str
    """English name as MMedBench files and prompts use it (``English``)."""
    native_name: str
    space_delimited: bool
    """False for scripts written without spaces between words (zh, ja)."""
    segmenter: Segmenter
    """Word segmenter used by text metrics and keyword matching."""
    answer_count: Callable[[str], int | None] = no_answer_count
    """How many options a question asks for, when its wording says so (None: not stated)."""

    def segment(self, text: str) -> list[str]:
        """Segment ``text`` into the units metrics count for this language."""
        return self.segmenter(text)

    @property
    def segmenter_name(self) -> str:
        """Name (and version) of the segmenter in use, as results files record it."""
        name = getattr(self.segmenter, "name", None)
        return name if isinstance(name, str) else f"{self.segmenter.__name__} (mmedkit regex)"

    @property
    def keyword_list(self) -> Path | None:
        """Path of this language's medical keyword list, when the corpus stage ships one."""
        ref = resources.files("mmedkit").joinpath("corpus", "keywords", f"{self.code}.txt")
        path = Path(str(ref))
        return path if path.is_file() else None


LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in (
        Language("en", "English", "English", True, segment_words),
        Language("zh", "Chinese", "中文", False, segment_zh),
        Language("ja", "Japanese", "日本語", False, segment_ja, ja_answer_count),
        Language("fr", "French", "Français", True, segment_words),
        Language("ru", "Russian", "Русский", True, segment_words),
        Language("es", "Spanish", "Español", True, segment_words),
    )
}
CODES: tuple[str, ...] = tuple(LANGUAGES)


def get_language(key: str) -> Language:
    """Look a language up by ISO code or English name (case-insensitive)."""
    k = key.strip().lower()
    for lang in LANGUAGES.values():
        if k in (lang.code, lang.name.lower(), lang.native_name.lower()):
            return lang
    known = ", ".join(f"{lang.code} ({lang.name})" for lang in LANGUAGES.values())
    raise KeyError(f"unknown language {key!r}; known: {known}")


def parse_langs(spec: str | Iterable[str] | None) -> list[Language]:
    """Parse ``"en,zh"`` (or a list, or None for all) into languages in registry order."""
    if spec is None or spec == "" or spec == "all":
        return list(LANGUAGES.values())
    keys = [s for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    wanted = {get_language(k).code for k in keys}
    return [lang for code, lang in LANGUAGES.items() if code in wanted]



def language_code(name: Any) -> str:
    """The registry code of a language code or name; ``ValueError`` naming the unknown one (for settings)."""
    try:
        return get_language(str(name)).code
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None


def _split_codes(value: Any) -> Any:
    return [s.strip() for s in value.split(",") if s.strip()] if isinstance(value, str) else value


def _some_codes(codes: list[str]) -> list[str]:
    if not codes:
        raise ValueError("expected a non-empty list of language codes")
    return list(dict.fromkeys(map(language_code, codes)))


LanguageCode = Annotated[str, AfterValidator(language_code)]
"""A settings field holding one language (code or name, stored as the code)."""
LanguageCodes = Annotated[list[str], BeforeValidator(_split_codes), AfterValidator(_some_codes)]
"""A settings field holding a non-empty list of languages (a list, or ``"en,zh"``), deduplicated in order."""
