"""Pretraining data: read corpus shards, tokenise them in parallel into a disk cache, lay tokens out.

Shards are JSONL (optionally compressed) or Parquet files with a text field, local or on any fsspec
filesystem (``s3://``, ``gs://``, ``hf://``...). Each shard is tokenised once per tokenizer into
``<cache>/<key>/`` — ``tokens.bin`` (a flat memory-mapped array), ``offsets.npy`` (document bounds)
and ``langs.npy`` — where ``key`` hashes the file's identity, the reading options and the tokenizer.
Work is done in chunks of documents written as they finish, so an interrupted run resumes where it
stopped. Every document is stored as the tokenizer encodes it (BOS where the tokenizer adds one)
followed by EOS.

Two layouts turn the documents of an epoch into training sequences:

* ``packed``: documents joined with EOS and cut into ``seq_len``-token sequences; only the very last
  sequence is shorter. No padding is spent.
* ``study``: the MMedLM study's layout, one document per window of ``seq_len`` tokens, windows starting
  every ``stride`` tokens, each padded to ``seq_len`` (the padding is masked out of the loss).

Sampling weights (per source or per language) say how many times each document is seen per epoch;
a fractional part picks a seeded subset. Held-out documents are chosen per document, seeded, before
weighting, so the held-out set does not depend on the weights.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmedkit.errors import DataError
from mmedkit.utils import atomic_write_json

CACHE_VERSION = 1
SHARD_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.bz2", ".jsonl.xz", ".jsonl.zst", ".ndjson", ".json.gz", ".parquet")
Sample = dict[str, np.ndarray]


# ------------------------------------------------------------------------------------------ reading


def expand_source(path: str) -> list[str]:
    """The shard URLs of a file, folder, glob or fsspec URL (folders: every shard below, sorted)."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(path)
    if "file" in fs.protocol or "local" in fs.protocol:
        root = os.path.realpath(root)  # one cache key per file, however the path is written
    if any(c in root for c in "*?["):
        files = sorted(f for f in fs.glob(root) if not fs.isdir(f))
    elif fs.isdir(root):
        files = sorted(f for f in fs.find(root) if f.lower().endswith(SHARD_SUFFIXES))
    elif fs.isfile(root):
        files = [root]
    else:
        raise DataError(f"corpus source not found: {path}")
    if not files:
        raise DataError(f"no JSONL or Parquet shards in {path} (looked for {', '.join(SHARD_SUFFIXES)})")
    return [fs.unstrip_protocol(f) for f in files]


AUTO_LANG_FIELDS = ("lang", "language", "metadata.language")
"""Where ``lang_field: auto`` looks for a record's language (``metadata.language``: the corpus stage's output)."""


def field_value(rec: dict[str, Any], dotted: str) -> Any:
    """``rec["metadata"]["language"]`` for ``metadata.language``; None where a part is missing."""
    value: Any = rec
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _document(rec: Any, text_field: str, lang_field: str | None, where: dict[str, Any], url: str,
              line: int) -> tuple[str, str | None] | None:
    if not isinstance(rec, dict):
        raise DataError(f"expected a JSON object, got {type(rec).__name__}", path=url, line=line)
    if any(field_value(rec, k) != v for k, v in where.items()):
        return None
    text = field_value(rec, text_field)
    if not isinstance(text, str):
        raise DataError(f"expected a string, got {type(text).__name__}", path=url, line=line, field=text_field)
    fields = AUTO_LANG_FIELDS if lang_field == "auto" else (lang_field,) if lang_field else ()
    lang = next((v for v in (field_value(rec, f) for f in fields) if v), None)
    return text, (str(lang) if lang else None)


def iter_documents(url: str, text_field: str = "text", lang_field: str | None = None,
                   where: dict[str, Any] | None = None) -> Iterator[tuple[str, str | None]]:
    """``(text, language)`` of each record of one shard that matches ``where``.

    Raises :class:`DataError` naming the file, line (or Parquet row) and field of a bad record.
    """
    import fsspec

    where = where or {}
    if url.lower().endswith(".parquet"):
        import pyarrow.parquet as pq

        with fsspec.open(url, "rb") as fh:
            pf = pq.ParquetFile(fh)
            names = pf.schema_arrow.names
            if text_field.split(".")[0] not in names:
                raise DataError(f"no column {text_field!r} (columns: {', '.join(names)})", path=url,
                                field=text_field)
            wanted = [text_field, *(AUTO_LANG_FIELDS if lang_field == "auto" else [lang_field]), *where]
            cols = [c for c in dict.fromkeys(str(w).split(".")[0] for w in wanted if w) if c in names]
            row = 0
            for batch in pf.iter_batches(columns=cols):
                for rec in batch.to_pylist():
                    row += 1
                    doc = _document(rec, text_field, lang_field, where, url, row)
                    if doc is not None:
                        yield doc
        return
    with fsspec.open(url, "rt", encoding="utf-8", compression="infer") as fh:
        for line, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                rec = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(f"malformed JSON: {exc.msg} at column {exc.colno}", path=url, line=line) from exc
            doc = _document(rec, text_field, lang_field, where, url, line)
            if doc is not None:
                yield doc


# ------------------------------------------------------------------------------------ token cache


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Hash of everything about a tokenizer that changes the ids it writes."""
    h = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    h.update((backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))).encode())
    h.update(repr((tokenizer.bos_token_id, tokenizer.eos_token_id, encode_documents(tokenizer, ["a b"]))).encode())
    return h.hexdigest()[:20]


def encode_documents(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text as the tokenizer encodes it (BOS where it adds one), then EOS."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise DataError("the tokenizer has no EOS token; documents cannot be joined")
    ids = tokenizer(list(texts), add_special_tokens=True, verbose=False)["input_ids"]
    return [[*x, eos] for x in ids]


_WORKER_TOKENIZER: Any = None


def _init_worker(tokenizer: Any) -> None:
    global _WORKER_TOKENIZER
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _WORKER_TOKENIZER = tokenizer


def _encode_chunk(texts: Sequence[str], tokenizer: Any = None) -> tuple[np.ndarray, np.ndarray]:
    ids = encode_documents(tokenizer if tokenizer is not None else _WORKER_TOKENIZER, texts)
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter((t for x in ids for t in x), dtype=np.int64, count=int(lengths.sum()))
    return flat, lengths


@dataclass
class TokenShard:
    """One tokenised shard in the cache: a memory-mapped token array and document offsets."""

    path: Path
    dtype: str
    offsets: np.ndarray
    langs: np.ndarray
    """Per document, an index into ``lang_names`` (0 = unknown)."""
    lang_names: list[str]
    key: str
    _tokens: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def open(cls, path: Path) -> TokenShard:
        """Open a finished cache entry."""
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        return cls(path, meta["dtype"], np.load(path / "offsets.npy"), np.load(path / "langs.npy"),
                   meta["lang_names"], meta["key"])

    @property
    def tokens(self) -> np.ndarray:
        """All tokens of the shard (opened lazily, so a shard pickles cheaply into data workers)."""
        if self._tokens is None:
            n = int(self.offsets[-1])
            self._tokens = (np.memmap(self.path / "tokens.bin", dtype=self.dtype, mode="r", shape=(n,))
                            if n else np.zeros(0, dtype=self.dtype))
        return self._tokens

    @property
    def n_docs(self) -> int:
        """Number of documents."""
        return len(self.offsets) - 1

    def doc(self, i: int) -> np.ndarray:
        """Tokens of document ``i`` (a view into the memory map)."""
        return self.tokens[self.offsets[i]:self.offsets[i + 1]]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_tokens"] = None
        return state


def shard_key(url: str, *, text_field: str, lang_field: str | None, where: dict[str, Any], tokenizer_fp: str) -> str:
    """Cache key of a shard: its identity (path, size, modification time or checksum) and the reading options."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    info = fs.info(path)
    ident = {k: str(info.get(k)) for k in ("size", "mtime", "ETag", "etag", "md5", "LastModified", "last_commit")
             if info.get(k) is not None}
    payload = json.dumps([CACHE_VERSION, url, ident, text_field, lang_field, where, tokenizer_fp], sort_keys=True,
                         default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def _chunks(docs: Iterable[tuple[str, str | None]], size: int) -> Iterator[tuple[int, list[str], list[str]]]:
    texts: list[str] = []
    langs: list[str] = []
    index = 0
    for text, lang in docs:
        texts.append(text)
        langs.append(lang or "")
        if len(texts) == size:
            yield index, texts, langs
            index, texts, langs = index + 1, [], []
    if texts:
        yield index, texts, langs


def _write_part(path: Path, flat: np.ndarray, lengths: np.ndarray, langs: list[str], dtype: str) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, tokens=flat.astype(dtype), lengths=lengths, langs=np.array(langs, dtype=str))
    os.replace(tmp, path)


def _finish(parts_dir: Path, final: Path, key: str, dtype: str, n_parts: int, source: str) -> TokenShard:
    """Join the parts into ``tokens.bin``/``offsets.npy``/``langs.npy`` + ``meta.json`` (written last)."""
    files = [parts_dir / f"part-{i:06d}.npz" for i in range(n_parts)]
    lengths = [np.load(f, allow_pickle=False)["lengths"] for f in files]
    offsets = np.zeros(sum(len(x) for x in lengths) + 1, dtype=np.int64)
    if len(offsets) > 1:
        np.cumsum(np.concatenate(lengths), out=offsets[1:])
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    names = [""]
    lang_codes = []
    if offsets[-1]:
        out = np.memmap(tmp / "tokens.bin", dtype=dtype, mode="w+", shape=(int(offsets[-1]),))
        pos = 0
        for f in files:
            with np.load(f, allow_pickle=False) as part:
                tok = part["tokens"]
                out[pos:pos + len(tok)] = tok
                pos += len(tok)
                for lang in part["langs"].tolist():
                    if lang not in names:
                        names.append(lang)
                    lang_codes.append(names.index(lang))
        out.flush()
        del out
    else:
        (tmp / "tokens.bin").write_bytes(b"")
    np.save(tmp / "offsets.npy", offsets)
    np.save(tmp / "langs.npy", np.array(lang_codes, dtype=np.uint16))
    atomic_write_json(tmp / "meta.json", {"version": CACHE_VERSION, "key": key, "source": source, "dtype": dtype,
                                          "documents": len(offsets) - 1, "tokens": int(offsets[-1]),
                                          "lang_names": names})
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    shutil.rmtree(parts_dir, ignore_errors=True)
    return TokenShard.open(final)


def tokenize_shards(urls: Sequence[str], tokenizer: Any, cache_dir: str | os.PathLike[str], *,
                    text_field: str = "text", lang_field: str | None = None, where: dict[str, Any] | None = None,
                    num_proc: int = 1, chunk_docs: int = 1000, log: Any = None) -> list[TokenShard]:
    """Tokenise each shard into the cache (skipping finished shards and finished chunks), in parallel."""
    where = where or {}
    root = Path(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    tok_fp = tokenizer_fingerprint(tokenizer)
    dtype = "uint16" if len(tokenizer) <= np.iinfo(np.uint16).max + 1 else "uint32"
    pool = None
    if num_proc > 1:
        import multiprocessing

        pool = ProcessPoolExecutor(num_proc, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(tokenizer,))
    shards = []
    try:
        for url in urls:
            key = shard_key(url, text_field=text_field, lang_field=lang_field, where=where, tokenizer_fp=tok_fp)
            final = root / key
            if (final / "meta.json").is_file():
                shards.append(TokenShard.open(final))
                continue
            parts_dir = root / f"{key}.partial"
            parts_dir.mkdir(exist_ok=True)
            done_before = len(list(parts_dir.glob("part-*.npz")))
            if log:
                log(f"tokenising {url}" + (f" (resuming: {done_before} chunks done)" if done_before else ""))
            n_parts = _tokenize_parts(iter_documents(url, text_field, lang_field, where), parts_dir, tokenizer,
                                      pool, num_proc, chunk_docs, dtype)
            shards.append(_finish(parts_dir, final, key, dtype, n_parts, url))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return shards


def _tokenize_parts(docs: Iterable[tuple[str, str | None]], parts_dir: Path, tokenizer: Any,
                    pool: ProcessPoolExecutor | None, num_proc: int, chunk_docs: int, dtype: str) -> int:
    pending: deque[tuple[Path, Future[tuple[np.ndarray, np.ndarray]], list[str]]] = deque()

    def drain(keep: int) -> None:
        while len(pending) > keep:
            path, fut, langs = pending.popleft()
            _write_part(path, *fut.result(), langs, dtype)

    n = 0
    for index, texts, langs in _chunks(docs, chunk_docs):
        n = index + 1
        path = parts_dir / f"part-{index:06d}.npz"
        if path.is_file():
            continue
        if pool is None:
            _write_part(path, *_encode_chunk(texts, tokenizer), langs, dtype)
        else:
            pending.append((path, pool.submit(_encode_chunk, texts), langs))
            drain(2 * num_proc)
    drain(0)
    return n


# ------------------------------------------------------------------------------------------ corpus


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
                       log: Any = None) -> PretrainSet:
    """Tokenise (or reuse the cache for) every source of a :class:`~mmedkit.train.config.PretrainData`."""
    if not data.sources:
        raise DataError("no corpus sources: set data.sources in the config or pass --data PATH")
    shards: list[TokenShard] = []
    weights: list[np.ndarray] = []
    held: list[np.ndarray] = []
    for src in data.sources:
        found = tokenize_shards(expand_source(src.path), tokenizer, cache_dir, text_field=data.text_field,
                                lang_field=data.lang_field, where=data.where, num_proc=data.num_proc,
                                chunk_docs=data.chunk_docs, log=log)
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
