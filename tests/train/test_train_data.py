"""Pretraining data: reading shards, the resumable token cache, packing, the study's windows, weights."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from mmedkit.bench.loader import load_benchmark
from mmedkit.errors import DataError
from mmedkit.train import token_cache
from mmedkit.train.batches import StepPlan, collate
from mmedkit.train.config import PretrainData, Source
from mmedkit.train.data import build_pretrain_set, epoch_order
from mmedkit.train.layouts import PackedSequences, window_starts
from mmedkit.train.shards import expand_source, iter_documents
from mmedkit.train.token_cache import encode_documents, tokenize_shards


@pytest.fixture(scope="module")
def tok(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def docs() -> list[dict[str, str]]:
    """Medical documents in six languages: each demo item's question, options and rationale."""
    out = []
    for split in ("train", "test"):
        for it in load_benchmark("demo", split=split):
            text = f"{it.question}\n" + "\n".join(f"{k}. {v}" for k, v in it.options.items())
            out.append({"text": text + (f"\n{it.rationale}" if it.rationale else ""), "lang": it.language,
                        "label": "medical" if len(out) % 5 else "general"})
    return out


def _write_jsonl(path: Path, recs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    return path


def _pset(tmp_path: Path, tok, files: list[Path | str], **kw):
    data = PretrainData(sources=[Source(path=str(f)) for f in files], **kw)
    return build_pretrain_set(data, tok, epochs=1, seed=7, cache_dir=tmp_path / "cache")


def test_packing_keeps_every_token_of_every_document_exactly_once(tmp_path: Path, tok, docs) -> None:
    f = _write_jsonl(tmp_path / "corpus.jsonl", docs)
    pset = _pset(tmp_path, tok, [f], seq_len=96)
    ep = pset.epoch(0)
    assert isinstance(ep, PackedSequences)
    assert sorted(ep.order.tolist()) == list(range(len(docs)))  # every document once, shuffled
    assert ep.order.tolist() != list(range(len(docs)))
    # What the model reads, after batching: the documents in epoch order, each followed by EOS.
    expected = np.concatenate([encode_documents(tok, [docs[d]["text"]])[0] for d in ep.order])
    batch = collate([ep[i] for i in range(len(ep))], tok.pad_token_id)
    mask = batch["attention_mask"].bool()
    assert batch["input_ids"][mask].tolist() == expected.tolist()
    # Only the last sequence is short; its padding (and nothing else) is masked out of attention and loss.
    assert mask[:-1].all() and int(mask[-1].sum()) == len(expected) - 96 * (len(ep) - 1)
    assert (batch["labels"][mask] == batch["input_ids"][mask]).all()
    assert (batch["labels"][~mask] == -100).all()
    # Sequence pieces tile each document once, with no overlap and no gap.
    covered: dict[int, list[tuple[int, int]]] = {}
    for i in range(len(ep)):
        for d, a, b in ep.pieces(i):
            covered.setdefault(d, []).append((a, b))
    for d, spans in covered.items():
        spans.sort()
        assert spans[0][0] == 0 and spans[-1][1] == pset.corpus.lengths[d]
        assert all(x[1] == y[0] for x, y in zip(spans, spans[1:], strict=False))
    eos_count = int((batch["input_ids"][mask] == tok.eos_token_id).sum())
    assert eos_count == len(docs)


def test_study_layout_windows_and_padding(tmp_path: Path, tok, docs) -> None:
    f = _write_jsonl(tmp_path / "corpus.jsonl", docs)
    pset = _pset(tmp_path, tok, [f], seq_len=64, stride=48, layout="study")
    ep = pset.epoch(0)
    assert pset.pad_to == 64
    by_doc: dict[int, list[int]] = {}
    for d, s in zip(ep.docs.tolist(), ep.starts.tolist(), strict=True):
        by_doc.setdefault(d, []).append(s)
    assert sorted(by_doc) == list(range(len(docs)))
    for d, starts in by_doc.items():
        n = int(pset.corpus.lengths[d])
        assert sorted(starts) == window_starts(n, 64, 48).tolist()
        assert max(starts) + 64 >= n  # the last window reaches the end of the document
    assert any(len(s) > 1 for s in by_doc.values())  # documents longer than a window get several
    batch = collate([ep[i] for i in range(len(ep))], tok.pad_token_id, pad_to=ep.pad_to)
    assert batch["input_ids"].shape == (len(ep), 64)
    mask = batch["attention_mask"].bool()
    for i in range(len(ep)):
        d, s = int(ep.docs[i]), int(ep.starts[i])
        doc = pset.corpus.doc(d)
        assert batch["input_ids"][i][mask[i]].tolist() == doc[s:s + 64].tolist()  # one document per window
    assert (batch["labels"][~mask] == -100).all() and (batch["labels"][mask] == batch["input_ids"][mask]).all()
    padding = 1 - mask.float().mean().item()
    assert padding > 0.05  # the cost of this layout that packing avoids


def test_study_layout_on_real_corpus_documents(tmp_path: Path, tok, shared_data: Path) -> None:
    pset = _pset(tmp_path, tok, [shared_data / "corpus_dev" / "fr.jsonl"], seq_len=2048, stride=1536,
                 layout="study", where={"label": "medical"})
    ep = pset.epoch(0)
    lengths = pset.corpus.lengths
    assert len(pset.corpus) == 167 and lengths.max() > 2048
    expected = sum(len(window_starts(int(n), 2048, 1536)) for n in lengths)
    assert len(ep) == expected
    overlap = [(int(d), int(s)) for d, s in zip(ep.docs, ep.starts, strict=True) if s > 0]
    d, s = overlap[0]
    assert ep[int(np.flatnonzero((ep.docs == d) & (ep.starts == s))[0])]["input_ids"][:512].tolist() == \
        pset.corpus.doc(d)[s:s + 512].tolist()


def test_weights_and_held_out_documents(tmp_path: Path, tok, docs) -> None:
    f = _write_jsonl(tmp_path / "corpus.jsonl", docs)
    weights = {"en": 2.0, "ja": 0.0, "fr": 0.5}
    pset = _pset(tmp_path, tok, [f], seq_len=64, language_weights=weights, eval_fraction=0.25)
    names = pset.corpus.lang_names
    order = epoch_order(pset.train_docs, pset.corpus.weights[pset.train_docs], 7, 0)
    counts = np.bincount(order, minlength=len(docs))
    for d in pset.train_docs:
        lang = names[pset.corpus.langs[d]]
        if lang == "en":
            assert counts[d] == 2
        elif lang == "ja":
            assert counts[d] == 0
        elif lang == "fr":
            assert counts[d] in (0, 1)
        else:
            assert counts[d] == 1
    fr = [d for d in pset.train_docs if names[pset.corpus.langs[d]] == "fr"]
    seen = sum(np.bincount(epoch_order(pset.train_docs, pset.corpus.weights[pset.train_docs], 7, e),
                           minlength=len(docs))[fr].sum() for e in range(20))
    assert 0.3 < seen / (20 * len(fr)) < 0.7
    # Held-out documents: disjoint from training, about the asked fraction, independent of the weights.
    assert not set(pset.train_docs) & set(pset.eval_docs)
    assert len(pset.train_docs) + len(pset.eval_docs) == len(docs)
    assert 0.1 < len(pset.eval_docs) / len(docs) < 0.4
    plain = _pset(tmp_path, tok, [f], seq_len=64, eval_fraction=0.25)
    assert plain.eval_docs.tolist() == pset.eval_docs.tolist()
    assert pset.describe()["held_out"]


def test_tokenisation_resumes_after_an_interruption(tmp_path: Path, tok, docs, monkeypatch) -> None:
    f = _write_jsonl(tmp_path / "corpus.jsonl", docs)
    urls = expand_source(str(f))
    real = token_cache._encode_chunk
    calls = {"n": 0, "kill_at": 4}

    def flaky(texts, tokenizer=None):
        calls["n"] += 1
        if calls["n"] == calls["kill_at"]:
            raise KeyboardInterrupt
        return real(texts, tokenizer)

    monkeypatch.setattr(token_cache, "_encode_chunk", flaky)
    with pytest.raises(KeyboardInterrupt):
        tokenize_shards(urls, tok, tmp_path / "cache", chunk_docs=10)
    assert len(list((tmp_path / "cache").glob("*.partial/part-*.npz"))) == 3
    calls.update(n=0, kill_at=-1)
    shard = tokenize_shards(urls, tok, tmp_path / "cache", chunk_docs=10)[0]
    assert calls["n"] == 12 - 3  # 120 documents in chunks of 10: only the unfinished chunks are encoded
    monkeypatch.setattr(token_cache, "_encode_chunk", real)
    fresh = tokenize_shards(urls, tok, tmp_path / "fresh", chunk_docs=7)[0]
    assert np.array_equal(np.asarray(shard.tokens), np.asarray(fresh.tokens))
    assert np.array_equal(shard.offsets, fresh.offsets)
    again = tokenize_shards(urls, tok, tmp_path / "cache", chunk_docs=10)[0]  # cached: nothing to do
    assert again.path == shard.path and not list((tmp_path / "cache").glob("*.partial"))


def test_parallel_tokenisation_matches_serial(tmp_path: Path, tok, docs) -> None:
    f = _write_jsonl(tmp_path / "corpus.jsonl", docs)
    urls = expand_source(str(f))
    serial = tokenize_shards(urls, tok, tmp_path / "a", chunk_docs=16)[0]
    parallel = tokenize_shards(urls, tok, tmp_path / "b", chunk_docs=16, num_proc=2)[0]
    assert np.array_equal(np.asarray(serial.tokens), np.asarray(parallel.tokens))
    assert serial.tokens.dtype == np.uint16  # 2,048-token vocabulary


def test_ranks_share_out_the_shards_one_writer_each(tmp_path: Path, tok, docs) -> None:
    """Two ranks on one cache at once: each shard tokenised once (a rank takes its own shards first, then
    waits for the other's), both get every shard in the corpus order."""
    import threading

    files = [_write_jsonl(tmp_path / f"part-{i}.jsonl", docs[i::4]) for i in range(4)]
    urls = [u for f in files for u in expand_source(str(f))]
    logs: dict[int, list[str]] = {0: [], 1: []}
    got: dict[int, list] = {}

    def rank(r: int) -> None:
        got[r] = tokenize_shards(urls, tok, tmp_path / "cache", chunk_docs=8, log=logs[r].append, rank=r, world=2)

    threads = [threading.Thread(target=rank, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = sorted(line for r in (0, 1) for line in logs[r])
    assert done == sorted(f"tokenising {u}" for u in urls)  # every shard once, by one rank
    assert [s.key for s in got[0]] == [s.key for s in got[1]]
    serial = tokenize_shards(urls, tok, tmp_path / "serial", chunk_docs=8)
    assert [s.key for s in serial] == [s.key for s in got[0]]
    for a, b in zip(serial, got[1], strict=True):
        assert np.array_equal(np.asarray(a.tokens), np.asarray(b.tokens))
    assert token_cache.rank_order(5, 1, 2) == [1, 3, 0, 2, 4]


def test_shard_formats_filters_and_fsspec(tmp_path: Path, tok, docs) -> None:
    import fsspec
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "corpus"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist(docs[:40]), folder / "a.parquet")
    with gzip.open(folder / "b.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in docs[40:])
    (folder / "notes.txt").write_text("not a shard")
    urls = expand_source(str(folder))
    assert [u.rsplit("/", 1)[-1] for u in urls] == ["a.parquet", "b.jsonl.gz"]
    got = [t for u in urls for t, _ in iter_documents(u, where={"label": "medical"})]
    assert got == [d["text"] for d in docs if d["label"] == "medical"]
    with fsspec.open("memory://corpus/c.jsonl", "wt") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in docs[:5])
    remote = _pset(tmp_path, tok, ["memory://corpus/*.jsonl"], seq_len=32)
    assert len(remote.corpus) == 5 and remote.corpus.lang_names[1:] == [docs[0]["lang"]]


def test_bad_records_name_file_line_and_field(tmp_path: Path, tok) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text('{"text": "fine"}\n\n{"text": 42}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.jsonl:3.*'text'"):
        list(iter_documents(expand_source(str(f))[0]))
    f.write_text('{"text": "fine"}\n{"text": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.jsonl:2: malformed JSON"):
        list(iter_documents(expand_source(str(f))[0]))
    with pytest.raises(DataError, match="corpus source not found"):
        expand_source(str(tmp_path / "missing"))
    with pytest.raises(DataError, match="no corpus sources"):
        build_pretrain_set(PretrainData(), tok, epochs=1, seed=0, cache_dir=tmp_path)


def test_step_plan_deals_each_sequence_once_to_processes() -> None:
    plan = StepPlan([10, 7], global_batch=4, micro_batch=1, world=2)
    assert plan.per_epoch == [3, 2] and plan.total_steps == 5 and plan.accum == 2
    for epoch, steps in enumerate(plan.per_epoch):
        seen = []
        for k in range(steps):
            for rank in range(2):
                mbs = plan.micro_batches(epoch, k, rank)
                assert len(mbs) == plan.accum  # every process runs the same number of passes
                seen += [i for mb in mbs for i in mb if i is not None]
        assert sorted(seen) == list(range(plan.epoch_sizes[epoch]))
    assert plan.locate(3) == (1, 0)
    assert plan.micro_batches(1, 1, 0) == [[4], [6]]
    assert plan.micro_batches(1, 1, 1) == [[5], [None]]  # 3 sequences left for 2 processes: a filler pass
    assert StepPlan([10], 4, 2, 1, max_steps=2).total_steps == 2


def test_corpus_stage_records_with_nested_language(tmp_path: Path, tok) -> None:
    """The corpus stage writes ``{"text", "id", "metadata": {"language": ...}}`` into ``<lang>/<rank>.jsonl.gz``."""
    folder = tmp_path / "corpus" / "fr"
    folder.mkdir(parents=True)
    recs = [{"text": "Le patient présente une fièvre.", "id": "a", "metadata": {"language": "fr", "kept": True}},
            {"text": "Douleur thoracique aiguë.", "id": "b", "metadata": {"language": "fr", "kept": False}}]
    with gzip.open(folder / "00000.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in recs)
    url = expand_source(str(tmp_path / "corpus"))[0]
    assert list(iter_documents(url, lang_field="auto")) == [(r["text"], "fr") for r in recs]
    assert list(iter_documents(url, lang_field="auto", where={"metadata.kept": True})) == [(recs[0]["text"], "fr")]
    pset = _pset(tmp_path, tok, [tmp_path / "corpus"], seq_len=16, language_weights={"fr": 3.0})
    assert pset.corpus.lang_names == ["", "fr"] and pset.corpus.weights.tolist() == [3.0, 3.0]
