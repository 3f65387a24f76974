"""Deduplication per language with datatrove's stages: exact (hash of normalised text) and MinHash.

Both keep datatrove's multi-stage design (signatures per task, a global find/cluster stage, a filter
that reads the same task files back) and make it per language by construction: the exact hash covers
``language + normalised text``, and MinHash shingles are salted with the language, so documents of two
languages never match. Shingles are word n-grams (default 5) for space-delimited languages and
character n-grams (default 5) for Chinese and Japanese, from ``mmedkit.languages``' segmenters.
"""

from collections.abc import Iterator
from typing import Any

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
from datatrove.utils.text import ngrams, simplify_text
from datatrove.utils.word_tokenizers import WordTokenizer

from mmedkit.languages import LANGUAGES, segment_cjk, segment_words
from mmedkit.text import normalize


def normalise_for_exact(text: str) -> str:
    """NFKC, case folding and collapsed whitespace: copies differing only in these are exact duplicates."""
    return normalize(text)


def exact_content(doc: Document) -> bytes:
    """What the exact-dedup hash covers: the document's language and its normalised text (UTF-8).

    Bytes, not str: xxhash 4 hashes bytes only (and datatrove reads this function's annotation).
    """
    return f"{doc.metadata.get('language', '')}\x1f{normalise_for_exact(doc.text)}".encode()


def exact_config() -> ExactDedupConfig:
    """datatrove's exact-dedup configuration (64-bit xxhash) over :func:`exact_content`."""
    return ExactDedupConfig(content_getter=exact_content)


class _Units(WordTokenizer):
    """Word units of mmedkit's regex segmenters (datatrove's tokenizer interface, for its MinHash step)."""

    def __init__(self, language: str = "en") -> None:
        super().__init__(language)
        self.split = segment_words if LANGUAGES[language].space_delimited else segment_cjk

    def word_tokenize(self, text: str) -> list[str]:
        return self.split(text)

    def sent_tokenize(self, text: str) -> list[str]:
        return [line for line in text.split("\n") if line.strip()]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        raise NotImplementedError("span tokenization is not used by MinHash")


class LanguageMinhashSignature(MinhashDedupSignature):
    """datatrove's MinHash signature stage with shingles per document language.

    ``doc.metadata[language_key]`` picks the segmenter (words, or characters for zh/ja) and the n-gram
    size (``config.n_grams``, or ``cjk_n_grams`` for zh/ja); each shingle is hashed together with the
    language code. Buckets, clustering and filtering are datatrove's own stages, unchanged.
    """

    name = "🎯 MinHash stage 1 (per language)"

    def __init__(self, output_folder: Any, config: MinhashConfig | None = None, cjk_n_grams: int = 5,
                 language_key: str = "language") -> None:
        super().__init__(output_folder, config=config, language=_Units())
        if cjk_n_grams < 1:
            raise ValueError(f"cjk_n_grams must be >= 1, got {cjk_n_grams}")
        self.cjk_n_grams = cjk_n_grams
        self.language_key = language_key
        self._units = {code: _Units(code) for code in LANGUAGES}
        self._language = "en"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> None:
        def tagged() -> Iterator[Document]:
            # datatrove computes a document's shingles right after taking it from this iterator
            for doc in data:
                self._language = doc.metadata.get(self.language_key) or ""
                yield doc

        super().run(tagged(), rank, world_size)

    def get_shingles(self, text: str) -> np.ndarray:
        """Hashed n-grams of ``text`` in the current document's language."""
        lang = self._language
        units = self._units.get(lang)
        if units is None:
            units, n = self._units["en"], self.config.n_grams
        else:
            n = self.config.n_grams if LANGUAGES[lang].space_delimited else self.cjk_n_grams
        words = units.word_tokenize(simplify_text(text, self.config.norm_config))
        return np.fromiter((self._hash_func(f"{lang}\x1f{' '.join(g)}".encode()) for g in ngrams(words, n)),
                           dtype=np.uint64).reshape((-1, 1))
