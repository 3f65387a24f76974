"""Sequence layouts: how the documents of an epoch become training sequences.

* ``packed`` (:class:`PackedSequences`): documents joined with EOS and cut into ``seq_len``-token
  sequences; only the very last sequence is shorter. No padding is spent.
* ``study`` (:class:`StudyWindows`): the MMedLM study's layout, one document per window of ``seq_len``
  tokens, windows starting every ``stride`` tokens, each padded to ``seq_len`` (the padding is masked
  out of the loss).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mmedkit.train.data import Corpus

Sample = dict[str, np.ndarray]


class PackedSequences:
    """Documents (in ``order``) joined and cut into ``seq_len``-token sequences."""

    pad_to: int | None = None

    def __init__(self, corpus: Corpus, order: np.ndarray, seq_len: int) -> None:
        self.corpus, self.order, self.seq_len = corpus, order, seq_len
        self.ends = np.cumsum(corpus.lengths[order]) if len(order) else np.zeros(0, dtype=np.int64)
        self.total = int(self.ends[-1]) if len(self.ends) else 0

    def __len__(self) -> int:
        return math.ceil(self.total / self.seq_len)

    def pieces(self, i: int) -> list[tuple[int, int, int]]:
        """``(document, start, stop)`` slices that make up sequence ``i``."""
        if not 0 <= i < len(self):
            raise IndexError(i)
        lo, hi = i * self.seq_len, min((i + 1) * self.seq_len, self.total)
        k = int(np.searchsorted(self.ends, lo, side="right"))
        out = []
        while lo < hi:
            doc_start = int(self.ends[k - 1]) if k else 0
            stop = min(int(self.ends[k]), hi)
            out.append((int(self.order[k]), lo - doc_start, stop - doc_start))
            lo, k = stop, k + 1
        return out

    def __getitem__(self, i: int) -> Sample:
        ids = np.concatenate([self.corpus.doc(d)[a:b] for d, a, b in self.pieces(i)]).astype(np.int64)
        return {"input_ids": ids, "labels": ids.copy()}


def window_starts(length: int, seq_len: int, stride: int) -> np.ndarray:
    """Start of each window over a document: 0, stride, 2*stride ... until a window reaches the end."""
    n = 1 if length <= seq_len else 1 + math.ceil((length - seq_len) / stride)
    return np.arange(n, dtype=np.int64) * stride


class StudyWindows:
    """The study's layout: one document per ``seq_len`` window, windows every ``stride`` tokens, shuffled."""

    def __init__(self, corpus: Corpus, order: np.ndarray, seq_len: int, stride: int,
                 rng: np.random.Generator | None = None) -> None:
        self.corpus, self.seq_len = corpus, seq_len
        self.pad_to: int | None = seq_len
        lengths = corpus.lengths[order]
        counts = np.where(lengths <= seq_len, 1, 1 + np.ceil(np.maximum(lengths - seq_len, 0) / stride)).astype(int)
        self.docs = np.repeat(order, counts)
        first = np.repeat(np.cumsum(counts) - counts, counts)
        self.starts = (np.arange(len(self.docs)) - first) * stride
        if rng is not None:
            perm = rng.permutation(len(self.docs))
            self.docs, self.starts = self.docs[perm], self.starts[perm]

    def __len__(self) -> int:
        return len(self.docs)

    def __getitem__(self, i: int) -> Sample:
        s = int(self.starts[i])
        ids = self.corpus.doc(int(self.docs[i]))[s:s + self.seq_len].astype(np.int64)
        return {"input_ids": ids, "labels": ids.copy()}
