"""Pretraining data: the tokenised corpus of every source, sampling weights, held-out documents, epochs.

Shards are read by :mod:`~mmedkit.train.shards`, tokenised once into :mod:`~mmedkit.train.token_cache`
and laid out into sequences by :mod:`~mmedkit.train.layouts` (``packed`` or the study's windows).

Sampling weights (per source or per language) say how many times each document is seen per epoch;
a fractional part picks a seeded subset. Held-out documents are chosen per document, seeded, before
weighting, so the held-out set does not depend on the weights.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmedkit.errors import DataError
from mmedkit.train.layouts import PackedSequences, StudyWindows
from mmedkit.train.shards import expand_source
from mmedkit.train.token_cache import TokenShard, tokenize_shards


class Corpus:
    """Documents of several shards with one global index, language and sampling weight per document."""

    def __init__(self, shards: Sequence[TokenShard], weights: Sequence[np.ndarray]) -> None:
        self.shards = list(shards)
        self.first = np.cumsum([0] + [s.n_docs for s in self.shards])
        self.lengths = (np.concatenate([np.diff(s.offsets) for s in self.shards]) if self.shards
                        else np.zeros(0, dtype=np.int64))
        self.weights = np.concatenate(list(weights)) if weights else np.zeros(0)
        names: list[str] = [""]
        codes = []
        for s in self.shards:
            remap = np.array([_index(names, n) for n in s.lang_names], dtype=np.int64)
            codes.append(remap[s.langs.astype(np.int64)] if len(s.langs) else np.zeros(0, dtype=np.int64))
        self.lang_names = names
        self.langs = np.concatenate(codes) if codes else np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.first[-1])

    def doc(self, g: int) -> np.ndarray:
        """Tokens of global document ``g``."""
        s = int(np.searchsorted(self.first, g, side="right")) - 1
        return self.shards[s].doc(int(g - self.first[s]))


def _index(names: list[str], name: str) -> int:
    if name not in names:
        names.append(name)
    return names.index(name)


def doc_weights(shard: TokenShard, source_weight: float | None, source_lang: str | None,
                language_weights: dict[str, float]) -> np.ndarray:
    """Sampling weight of each document of ``shard``: the source's weight, else its language's (default 1)."""
    if source_weight is not None:
        return np.full(shard.n_docs, float(source_weight))
    per_name = np.array([language_weights.get(source_lang or n, 1.0) for n in shard.lang_names], dtype=np.float64)
    return per_name[shard.langs.astype(np.int64)] if shard.n_docs else np.zeros(0)


def held_out_mask(shard: TokenShard, fraction: float, seed: int) -> np.ndarray:
    """Seeded per-document choice of held-out documents (the same whatever the weights or other shards)."""
    if fraction <= 0:
        return np.zeros(shard.n_docs, dtype=bool)
    rng = np.random.default_rng([seed, int(shard.key[:15], 16)])
    return rng.random(shard.n_docs) < fraction


def epoch_order(docs: np.ndarray, weights: np.ndarray, seed: int, epoch: int) -> np.ndarray:
    """The documents of one epoch, each repeated by its weight (fractions: seeded Bernoulli), shuffled."""
    rng = np.random.default_rng([seed, epoch, 1])
    whole = np.floor(weights)
    reps = whole.astype(np.int64) + (rng.random(len(weights)) < (weights - whole))
    order = np.repeat(docs, reps)
    rng.shuffle(order)
    return order


@dataclass
class PretrainSet:
    """Training and held-out sequences of a tokenised corpus, epoch by epoch."""

    corpus: Corpus
    train_docs: np.ndarray
    eval_docs: np.ndarray
    seq_len: int
    layout: str
    stride: int
    epochs: int
    seed: int
    fingerprint: str

    @property
    def pad_to(self) -> int | None:
        """Fixed length every batch is padded to (the study layout), else None."""
        return self.seq_len if self.layout == "study" else None

    def epoch(self, e: int) -> PackedSequences | StudyWindows:
        """The sequences of epoch ``e`` (0-based), in training order."""
        order = epoch_order(self.train_docs, self.corpus.weights[self.train_docs], self.seed, e)
        return self._layout(order, np.random.default_rng([self.seed, e, 2]))

    def eval_set(self) -> PackedSequences | StudyWindows | None:
        """Held-out sequences (documents in corpus order, each once), or None."""
        return self._layout(self.eval_docs, None) if len(self.eval_docs) else None

    def _layout(self, order: np.ndarray, rng: np.random.Generator | None) -> PackedSequences | StudyWindows:
        if self.layout == "study":
            return StudyWindows(self.corpus, order, self.seq_len, self.stride, rng)
        return PackedSequences(self.corpus, order, self.seq_len)

    def describe(self) -> dict[str, Any]:
        """Documents and tokens per language, for training and held out."""
        out: dict[str, Any] = {}
        for part, docs in (("train", self.train_docs), ("held_out", self.eval_docs)):
            per: dict[str, dict[str, int]] = {}
            for code, name in enumerate(self.corpus.lang_names):
                sel = docs[self.corpus.langs[docs] == code]
                if len(sel):
                    per[name or "unknown"] = {"documents": len(sel), "tokens": int(self.corpus.lengths[sel].sum())}
            out[part] = per
        return out


def build_pretrain_set(data: Any, tokenizer: Any, *, epochs: int, seed: int, cache_dir: str | os.PathLike[str],
                       log: Any = None, rank: int = 0, world: int = 1) -> PretrainSet:
    """Tokenise (or reuse the cache for) every source of a :class:`~mmedkit.train.config.PretrainData`
    (``rank`` of ``world`` processes starts with its share of the shards)."""
    if not data.sources:
        raise DataError("no corpus sources: set data.sources in the config or pass --data PATH")
    shards: list[TokenShard] = []
    weights: list[np.ndarray] = []
    held: list[np.ndarray] = []
    for src in data.sources:
        found = tokenize_shards(expand_source(src.path), tokenizer, cache_dir, text_field=data.text_field,
                                lang_field=data.lang_field, where=data.where, num_proc=data.num_proc,
                                chunk_docs=data.chunk_docs, log=log, rank=rank, world=world)
        for shard in found:
            if src.lang:
                shard.lang_names = [src.lang] * len(shard.lang_names)
            shards.append(shard)
            weights.append(doc_weights(shard, src.weight, src.lang, data.language_weights))
            held.append(held_out_mask(shard, data.eval_fraction, seed))
    corpus = Corpus(shards, weights)
    mask = np.concatenate(held) if held else np.zeros(0, dtype=bool)
    idx = np.arange(len(corpus))
    h = hashlib.sha256(json.dumps([[s.key for s in shards], data.layout, data.seq_len, data.stride,
                                   data.eval_fraction, seed]).encode())
    for w in weights:
        h.update(np.ascontiguousarray(w, dtype=np.float64).tobytes())
    fp = h.hexdigest()[:16]
    return PretrainSet(corpus, idx[~mask], idx[mask], data.seq_len, data.layout, data.stride, epochs, seed, fp)
