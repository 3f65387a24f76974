"""Training throughput: packed sequences vs the MMedLM study's pad-to-2,048 window layout.

Both runs train the same tiny model on the same documents for one epoch, with the same trainer
(``mmedkit.train.loop.train``), global batch and sequence length (2,048); only ``data.layout``
differs. The script prints, for each layout, how many positions the model computed, how many of
them were real tokens (not padding), the training time and the useful (non-padding) tokens per
second, then the ratios, measured in this one run so machine load affects both alike.

    python benchmarks/bench_train.py [--docs 300] [--model DIR] [--out results.json]

Documents: the medical documents of ../shared/data/corpus_dev (six languages) when present, else
the embedded demo sample's questions and rationales. In the study layout every document gets its
own 2,048-token windows (stride 1,536), padded; packed sequences join documents with EOS.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "data" / "corpus_dev"


def write_documents(path: Path, n: int) -> str:
    """Up to ``n`` medical documents, spread over the languages, as one JSONL shard; returns a description."""
    if CORPUS.is_dir():
        per_lang: dict[str, list[dict]] = {}
        for f in sorted(CORPUS.glob("*.jsonl")):
            recs = [json.loads(x) for x in f.read_text(encoding="utf-8").splitlines() if x.strip()]
            per_lang[f.stem] = [{"text": r["text"], "lang": r["lang"]} for r in recs if r.get("label") == "medical"]
        docs = [d for group in zip(*per_lang.values(), strict=False) for d in group][:n]
        source = f"{len(docs)} medical documents of {CORPUS} ({', '.join(per_lang)})"
    else:
        from mmedkit.bench.loader import load_benchmark

        docs = [{"text": f"{it.question}\n{it.rationale or ''}", "lang": it.language}
                for split in ("train", "test") for it in load_benchmark("demo", split=split)][:n]
        source = f"{len(docs)} demo items (../shared/data absent)"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    return source


def run(layout: str, model: str, corpus: Path, work: Path, args: argparse.Namespace) -> dict:
    from mmedkit.train.config import load_config
    from mmedkit.train.loop import train

    sets = [f"data.sources=[{{path: '{corpus}'}}]", f"data.layout={layout}",
            "data.seq_len=2048", "data.stride=1536", "data.eval_fraction=0", "train.epochs=1",
            f"train.global_batch_size={args.global_batch}", f"train.micro_batch_size={args.micro_batch}",
            "train.save_every=100000", "train.log_every=100000", "logging.progress=false",
            "logging.tensorboard=false"]
    cfg = load_config("tiny-cpu", "pretrain", sets)
    cfg.model, cfg.out = model, str(work / layout)
    cfg.data.cache_dir = str(work.parent / "cache")  # tokenised once, shared by every run
    s = train(cfg, resume=False)
    return {"layout": layout, "steps": s["steps"], "positions": s["positions_this_session"],
            "useful_tokens": s["useful_tokens"],
            "padding_fraction": s["padding_fraction_this_session"], "train_seconds": s["train_seconds"],
            "useful_tokens_per_s": s["useful_tokens_per_s_this_session"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=300, help="number of documents (default 300)")
    ap.add_argument("--model", help="model folder (default: a tiny random Llama built for this run)")
    ap.add_argument("--global-batch", type=int, default=8)
    ap.add_argument("--micro-batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=2, help="runs per layout, alternating order; the fastest counts")
    ap.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        work = Path(tmp)
        corpus = work / "docs.jsonl"
        source = write_documents(corpus, args.docs)
        model = args.model
        if model is None:
            from mmedkit.models.tiny import build_tiny_model

            model = str(build_tiny_model(work / "tiny"))
        runs = [run(layout, model, corpus, work / f"r{i}", args) for i in range(args.repeats)
                for layout in (("packed", "study") if i % 2 == 0 else ("study", "packed"))]
    # The fastest run of each layout: on a shared machine, other jobs only ever slow a run down.
    packed, study = (min((r for r in runs if r["layout"] == lay), key=lambda r: r["train_seconds"])
                     for lay in ("packed", "study"))
    rows = [packed, study]
    print(f"\ndocuments: {source}; model: {'tiny random Llama' if args.model is None else args.model}; "
          f"sequence length 2,048; global batch {args.global_batch}, micro-batch {args.micro_batch}; one epoch each, "
          f"fastest of {args.repeats} runs per layout\n")
    print(f"{'layout':<8} {'steps':>6} {'positions':>11} {'real tokens':>12} {'padding':>8} {'train s':>8} "
          f"{'useful tok/s':>13}")
    for r in rows:
        print(f"{r['layout']:<8} {r['steps']:>6} {r['positions']:>11,} {r['useful_tokens']:>12,} "
              f"{100 * r['padding_fraction']:>7.1f}% {r['train_seconds']:>8.1f} {r['useful_tokens_per_s']:>13,.0f}")
    ratio = packed["useful_tokens_per_s"] / study["useful_tokens_per_s"]
    time_ratio = study["train_seconds"] / packed["train_seconds"]
    print(f"\npacked / study useful tokens per second: {ratio:.2f}x")
    print(f"time to train on the documents once, study / packed: {time_ratio:.2f}x (the study's windows also "
          f"repeat {study['useful_tokens'] - packed['useful_tokens']:,} overlapping tokens)")
    if args.out:
        figures = {"documents": source, "runs": runs, "fastest": rows, "useful_tokens_per_s_ratio": ratio,
                   "epoch_time_ratio": time_ratio}
        args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
