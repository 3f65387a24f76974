"""Log-likelihood scoring speed: mmedkit's shared-prefix path vs a naive loop vs lm-evaluation-harness.

All three score the same prompts and candidate strings with the same model; the script prints
items/s, the speed ratios (measured in this run, so machine noise cancels) and how often the
predictions agree.

    python benchmarks/bench_loglikelihood.py [--model DIR] [--n-medqa 300] [--batch-size 8]

Items: the first ``--n-medqa`` questions of MedQA-USMLE (../shared/data, when present) plus the
60 test items of the embedded demo sample (six languages; French items have 31 candidate
answer sets each). Without ../shared the demo items are used alone.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
MEDQA = ROOT.parent / "shared" / "data" / "benchmarks" / "medqa_usmle_4options" / "data" / "medqa" / "test.jsonl"


def load_items(n_medqa: int):
    """MedQA-USMLE test items (original records are MMedBench-shaped) plus the demo test items."""
    from mmedkit.bench.loader import load_benchmark, load_file
    from mmedkit.languages import get_language

    items = []
    if MEDQA.is_file() and n_medqa > 0:
        items += load_file(MEDQA, get_language("en"), "test")[:n_medqa]
    items += load_benchmark("demo")
    return items


def argmax(xs: list[float]) -> int:
    return max(range(len(xs)), key=lambda i: xs[i])


def run_mmedkit(model_dir: str, reqs, batch_size: int) -> tuple[float, list[list[float]]]:
    from mmedkit.models.hf import HFModel

    lm = HFModel(model_dir, dtype="float32", device="cpu", batch_size=batch_size)
    lm.loglikelihood(reqs[:2])  # warm-up
    t = time.perf_counter()
    scores = lm.loglikelihood(reqs)
    return time.perf_counter() - t, scores


def run_naive(model_dir: str, reqs) -> tuple[float, list[list[float]]]:
    from mmedkit.models.hf import HFModel

    lm = HFModel(model_dir, dtype="float32", device="cpu")
    t = time.perf_counter()
    scores = [[lm.loglikelihood_naive(r.context, c) for c in r.continuations] for r in reqs]
    return time.perf_counter() - t, scores


def run_lm_eval(model_dir: str, reqs, golds: list[int], batch_size: int) -> tuple[float, list[list[float]]]:
    """lm-eval's hf backend on a custom multiple_choice task holding exactly our prompts."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    tmp = Path(tempfile.mkdtemp(prefix="mmed-lmeval-"))
    data = tmp / "items.jsonl"
    with data.open("w", encoding="utf-8") as fh:
        for i, (r, g) in enumerate(zip(reqs, golds, strict=True)):
            fh.write(json.dumps({"idx": i, "context": r.context, "choices": list(r.continuations), "gold": g},
                                ensure_ascii=False) + "\n")
    (tmp / "mmed_ll.yaml").write_text(
        "task: mmed_ll_bench\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        "doc_to_text: context\n"
        "doc_to_choice: choices\n"
        "doc_to_target: gold\n"
        'target_delimiter: ""\n'
        "metric_list:\n  - metric: acc\n", encoding="utf-8")
    from transformers import AutoTokenizer

    # Prompts as mmedkit tokenizes them: with BOS exactly when the tokenizer itself adds one.
    tok = AutoTokenizer.from_pretrained(model_dir)
    adds_bos = tok.bos_token_id is not None and tok("x")["input_ids"][:1] == [tok.bos_token_id]
    lm = HFLM(pretrained=model_dir, dtype="float32", device="cpu", batch_size=batch_size, add_bos_token=adds_bos)
    tm = TaskManager(include_path=str(tmp))
    from lm_eval.api.instance import Instance

    warm = reqs[:2]  # same warm-up as mmedkit gets
    lm.loglikelihood([Instance("loglikelihood", {}, (r.context, c), 0) for r in warm for c in r.continuations[:2]])
    t = time.perf_counter()
    out = lm_eval.simple_evaluate(model=lm, tasks=["mmed_ll_bench"], task_manager=tm, log_samples=True,
                                  num_fewshot=0, bootstrap_iters=0)
    elapsed = time.perf_counter() - t
    samples = sorted(out["samples"]["mmed_ll_bench"], key=lambda s: s["doc"]["idx"])
    scores = [[float(r[0]) for r in s["filtered_resps"]] for s in samples]
    return elapsed, scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model folder (default: a tiny model built in a temp folder)")
    ap.add_argument("--n-medqa", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=8, help="items per batch (mmedkit)")
    ap.add_argument("--lm-eval-batch-size", type=int, default=32, help="requests per batch (lm-eval)")
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    import torch

    from mmedkit.bench.prompts import PromptConfig, candidates, loglikelihood_request

    torch.manual_seed(0)
    model_dir = args.model
    if model_dir is None:
        from mmedkit.models.tiny import build_tiny_model

        model_dir = str(build_tiny_model(Path(tempfile.mkdtemp(prefix="mmed-tiny-")) / "model"))
    items = load_items(args.n_medqa)
    reqs = [loglikelihood_request(it, PromptConfig())[0] for it in items]
    golds = [candidates(it).index(it.answer) for it in items]
    n_cand = sum(len(r.continuations) for r in reqs)
    print(f"{len(items)} items, {n_cand} candidate continuations, model {model_dir}, "
          f"torch threads {torch.get_num_threads()}")

    t_ours, s_ours = run_mmedkit(model_dir, reqs, args.batch_size)
    rows = [("mmedkit (shared prefix)", t_ours, s_ours)]
    if not args.skip_naive:
        rows.append(("naive loop (1 forward / candidate)", *run_naive(model_dir, reqs)))
    rows.append(("lm-eval hf backend", *run_lm_eval(model_dir, reqs, golds, args.lm_eval_batch_size)))

    pred_ours = [argmax(s) for s in s_ours]
    report = {"items": len(items), "candidates": n_cand, "model": model_dir, "runs": {}}
    print(f"\n{'scorer':38s} {'seconds':>8s} {'items/s':>9s} {'mmedkit x':>10s} {'agree':>7s} {'ties':>5s} "
          f"{'max |dlogp|':>11s} {'acc %':>6s}")
    for name, secs, scores in rows:
        preds = [argmax(s) for s in scores]
        ties = sum(1 for s in scores if sorted(s)[-1] - sorted(s)[-2] < 1e-5) if scores else 0
        agree = sum(a == b for a, b in zip(preds, pred_ours, strict=True)) / len(preds)
        maxdiff = max(abs(a - b) for sa, sb in zip(scores, s_ours, strict=True) for a, b in zip(sa, sb, strict=True))
        acc = 100 * sum(p == g for p, g in zip(preds, golds, strict=True)) / len(golds)
        speedup = secs / t_ours
        print(f"{name:38s} {secs:8.2f} {len(items) / secs:9.2f} {speedup:9.2f}x {100 * agree:6.1f}% {ties:5d} "
              f"{maxdiff:11.2e} {acc:6.2f}")
        report["runs"][name] = {"seconds": round(secs, 3), "items_per_s": round(len(items) / secs, 3),
                                "mmedkit_speedup": round(speedup, 2), "agreement": agree, "ties": ties,
                                "max_abs_logprob_diff": maxdiff, "accuracy": round(acc, 2)}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
