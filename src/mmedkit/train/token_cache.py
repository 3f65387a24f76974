"""The token cache: each corpus shard tokenised once per tokenizer, in parallel and resumably.

A shard is tokenised into ``<cache>/<key>/`` — ``tokens.bin`` (a flat memory-mapped array),
``offsets.npy`` (document bounds) and ``langs.npy`` — where ``key`` hashes the file's identity, the
reading options and the tokenizer. Work is done in chunks of documents written as they finish, so an
interrupted run resumes where it stopped. Every document is stored as the tokenizer encodes it (BOS
where the tokenizer adds one) followed by EOS.

Under several processes the shards are shared out: rank ``r`` of ``W`` tokenises shards ``r, r+W, ...``
first, then takes the others, each behind a lock on its cache entry (``<key>.lock``): one writer per entry,
and a process that reaches a shard another is writing waits for it and reads the result.
"""

from __future__ import annotations

import hashlib
import json
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
from mmedkit.train.shards import iter_documents
from mmedkit.utils import atomic_write_json

CACHE_VERSION = 1


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


def rank_order(n: int, rank: int, world: int) -> list[int]:
    """Indices ``0..n-1``, this rank's share (``rank, rank+world, ...``) first, then the others in turn."""
    return sorted(range(n), key=lambda i: ((i - rank) % world != 0, (i - rank) % world, i))


def tokenize_shards(urls: Sequence[str], tokenizer: Any, cache_dir: str | os.PathLike[str], *,
                    text_field: str = "text", lang_field: str | None = None, where: dict[str, Any] | None = None,
                    num_proc: int = 1, chunk_docs: int = 1000, log: Any = None, rank: int = 0,
                    world: int = 1) -> list[TokenShard]:
    """Tokenise each shard into the cache (skipping finished shards and finished chunks), in parallel;
    ``rank`` of ``world`` processes starts with its share. Returns the shards in the order of ``urls``."""
    from filelock import FileLock

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
    shards: dict[int, TokenShard] = {}
    try:
        for i in rank_order(len(urls), rank, world):
            url = urls[i]
            key = shard_key(url, text_field=text_field, lang_field=lang_field, where=where, tokenizer_fp=tok_fp)
            final = root / key
            if (final / "meta.json").is_file():
                shards[i] = TokenShard.open(final)
                continue
            with FileLock(root / f"{key}.lock"):
                if (final / "meta.json").is_file():  # another process wrote it while this one waited
                    shards[i] = TokenShard.open(final)
                    continue
                parts_dir = root / f"{key}.partial"
                parts_dir.mkdir(exist_ok=True)
                done_before = len(list(parts_dir.glob("part-*.npz")))
                if log:
                    log(f"tokenising {url}" + (f" (resuming: {done_before} chunks done)" if done_before else ""))
                n_parts = _tokenize_parts(iter_documents(url, text_field, lang_field, where), parts_dir, tokenizer,
                                          pool, num_proc, chunk_docs, dtype)
                shards[i] = _finish(parts_dir, final, key, dtype, n_parts, url)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return [shards[i] for i in range(len(urls))]


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
