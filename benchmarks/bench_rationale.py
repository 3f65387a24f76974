"""BERTScore speed: one scorer loaded once and batched (mmedkit) vs the study's per-sample scoring.

The study's script calls ``bert_score.score([candidate], [reference], model_type=...)`` once per
item, which loads the tokenizer and the model again for every sample. This script scores the same
pairs both ways in one run and prints samples/s and their ratio (machine noise cancels), plus the
largest F1 difference between the two (they compute the same thing).

    python benchmarks/bench_rationale.py [--model DIR] [--per-sample 24] [--device cpu]

Pairs: each reference rationale of the embedded demo sample (six languages, train + test) against the
rationale of another item of its language. ``--model`` defaults to a random encoder with the
architecture and size of bert-base-multilingual-cased (12 layers, hidden 768, 119,547 embedding
rows, 178M parameters; WordPiece vocabulary trained on the demo texts; built in a temporary folder):
timings are those of a BERT-base model, its scores mean nothing. Pass ``--model`` a real checkpoint
folder for meaningful scores.
The per-sample path uses the ``bert-score`` package when it is installed (the study's exact call),
else reloads mmedkit's scorer for each sample.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
MBERT_VOCAB = 119547  # rows of bert-base-multilingual-cased's embedding matrix


def pairs() -> list[tuple[str, str]]:
    """(candidate, reference): each demo rationale against the next one of its language."""
    from mmedkit.bench.loader import load_benchmark

    items = [it for split in ("train", "test") for it in load_benchmark("demo", split=split) if it.rationale]
    out = []
    for lang in dict.fromkeys(it.language for it in items):
        group = [it for it in items if it.language == lang]
        out += [(group[(k + 1) % len(group)].rationale or "", it.rationale or "") for k, it in enumerate(group)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="encoder folder (default: a BERT-base-sized random encoder)")
    ap.add_argument("--layer", type=int, default=9, help="hidden layer (9, as bert-score uses for mBERT)")
    ap.add_argument("--per-sample", type=int, default=24, help="pairs scored the per-sample way (it is slow)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test fixture that builds encoders
    from tiny_bert import build_tiny_bert

    from mmedkit.bench.rationale.bertscore import BERTScorer

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    data = pairs()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            t = time.perf_counter()
            model = str(build_tiny_bert(Path(tmp) / "bert-base-sized", vocab_size=30000, hidden_size=768, layers=12,
                                        heads=12, intermediate_size=3072, embedding_rows=MBERT_VOCAB))
            print(f"built a random BERT-base-sized encoder in {time.perf_counter() - t:.1f} s: {model}")
        cands, refs = [c for c, _ in data], [r for _, r in data]

        t = time.perf_counter()
        scorer = BERTScorer(model, layer=args.layer, device=args.device, batch_size=args.batch_size)
        load_s = time.perf_counter() - t
        t = time.perf_counter()
        batched = scorer.score(cands, refs)
        score_s = time.perf_counter() - t
        batched_rate = len(data) / (load_s + score_s)
        print(f"batched: {len(data)} pairs, model load {load_s:.2f} s + scoring {score_s:.2f} s "
              f"-> {batched_rate:.2f} samples/s (device {scorer.device}, batch {args.batch_size})")
        del scorer

        n = min(args.per_sample, len(data))
        try:
            import bert_score

            how = f"bert_score {bert_score.__version__} score() per sample (the study's call)"

            def one(c: str, r: str) -> float:
                return float(bert_score.score([c], [r], model_type=model, num_layers=args.layer,
                                              device=args.device)[2][0])
        except ImportError:
            how = "mmedkit BERTScorer reloaded per sample (bert-score not installed)"

            def one(c: str, r: str) -> float:
                return BERTScorer(model, layer=args.layer, device=args.device).score([c], [r])[0].f

        picked = [round(k * len(data) / n) for k in range(n)]  # spread over the six languages
        t = time.perf_counter()
        single = [one(*data[i]) for i in picked]
        per_s = time.perf_counter() - t
        per_rate = n / per_s
        print(f"per-sample: {n} pairs in {per_s:.2f} s -> {per_rate:.2f} samples/s ({how})")
        diff = max(abs(batched[i].f - b) for i, b in zip(picked, single, strict=True))
        print(f"speed-up of batched over per-sample scoring: {batched_rate / per_rate:.1f}x "
              f"(largest F1 difference on the shared pairs: {diff:.2e})")


if __name__ == "__main__":
    main()
