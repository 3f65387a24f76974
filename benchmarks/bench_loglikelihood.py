"""Log-likelihood scoring speed per item type: mmedkit vs the naive loop vs lm-evaluation-harness.

    python benchmarks/bench_loglikelihood.py [--model DIR] [--n-medqa 40] [--limit N] [--types ...] [--cpu-time]

Item types (all scored with the same model and the same prompts by every scorer):

* ``letter``: single-answer items, candidates `` A`` .. `` E`` (MedQA-USMLE test items from
  ../shared/data when present, plus the 50 single-answer demo items);
* ``multi``: multi-answer items, every answer set a candidate (the 10 French demo items, 31 sets each);
* ``text``: the single-answer items scored by option text (`` Fibrillin-1``: several tokens each).

Per type and scorer: items/s and the ratios measured in this run. For mmedkit also the tokens it
fed to the model per second (context after the memoized shared preamble, plus candidate-tree
tokens; padding excluded) and that as a fraction of this machine's forward throughput, measured
in the same run just before and after mmedkit's pass (a plain forward of the same model on random
tokens, 8 x 256, final hidden states only: the cost of a context token). "needed tok/s" counts
every context token in full plus the tree tokens, i.e. the tokens a scorer without a preamble
cache must compute. Agreement and max |dlogp| are against mmedkit's scores.
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
CLOCK = time.perf_counter
"""Wall clock, or this process's CPU time with ``--cpu-time`` (one torch thread): on a machine shared with
other jobs, CPU seconds still measure the work each scorer does."""
MEDQA = ROOT.parent / "shared" / "data" / "benchmarks" / "medqa_usmle_4options" / "data" / "medqa" / "test.jsonl"
TYPES = ("letter", "multi", "text")


def load_sets(n_medqa: int) -> dict[str, tuple[list, list[int]]]:
    """Requests and gold indices per item type."""
    from mmedkit.bench.loader import load_benchmark, load_file
    from mmedkit.bench.prompts import ANSWER_PREFIX, PromptConfig, build_prompt, candidates, loglikelihood_request
    from mmedkit.languages import get_language
    from mmedkit.models.base import LoglikelihoodRequest

    items = []
    if MEDQA.is_file() and n_medqa > 0:
        items += load_file(MEDQA, get_language("en"), "test")[:n_medqa]
    items += load_benchmark("demo")
    single = [it for it in items if not it.multi_answer]
    multi = [it for it in items if it.multi_answer]
    letters = ([loglikelihood_request(it, PromptConfig())[0] for it in single],
               [candidates(it).index(it.answer) for it in single])
    sets = ([loglikelihood_request(it, PromptConfig())[0] for it in multi],
            [candidates(it).index(it.answer) for it in multi])
    text = ([LoglikelihoodRequest(str(build_prompt(it, PromptConfig())) + ANSWER_PREFIX.removesuffix(" OPTION"),
                                  tuple(f" {v}" for v in it.options.values())) for it in single],
            [list(it.options).index(next(iter(it.answer))) for it in single])
    return {"letter": letters, "multi": sets, "text": text}


def forward_throughput(lm, rows: int = 8, length: int = 256, repeats: int = 1) -> float:
    """Tokens/s of a plain batched forward on random tokens (final hidden states only), best of ``repeats``."""
    import torch

    vocab = lm.model.config.vocab_size
    ids = torch.randint(0, vocab, (rows, length), generator=torch.Generator().manual_seed(0)).to(lm.device)
    best = float("inf")
    with torch.inference_mode():
        for _ in range(repeats):
            t = CLOCK()
            lm.model(input_ids=ids, logits_to_keep=1)
            best = min(best, CLOCK() - t)
    return rows * length / best


def needed_tokens(lm, reqs) -> int:
    """Every context token plus each item's candidate-tree tokens."""
    from mmedkit.models.hf_scoring import build_tree

    total = 0
    for r in reqs:
        text, special = lm.render(r.context, r.continuation_prefix)
        ctx, conts = lm.encode_request(text, r.continuations, special)
        total += len(ctx) + len(build_tree(conts).tokens)
    return total


def run_mmedkit(lm, reqs) -> tuple[float, list[list[float]], int]:
    lm.loglikelihood(reqs[:2])  # warm-up
    fed = getattr(lm, "tokens_computed", 0)
    t = CLOCK()
    scores = lm.loglikelihood(reqs)
    return CLOCK() - t, scores, getattr(lm, "tokens_computed", 0) - fed


def run_naive(lm, reqs) -> tuple[float, list[list[float]]]:
    t = CLOCK()
    scores = [[lm.loglikelihood_naive(r.context, c) for c in r.continuations] for r in reqs]
    return CLOCK() - t, scores


def make_lm_eval(model_dir: str, batch_size: int):
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoTokenizer

    # Prompts as mmedkit tokenizes them: with BOS exactly when the tokenizer itself adds one.
    tok = AutoTokenizer.from_pretrained(model_dir)
    adds_bos = tok.bos_token_id is not None and tok("x")["input_ids"][:1] == [tok.bos_token_id]
    return HFLM(pretrained=model_dir, dtype="float32", device="cpu", batch_size=batch_size, add_bos_token=adds_bos)


def run_lm_eval(lm, reqs, golds: list[int]) -> tuple[float, list[list[float]]]:
    """lm-eval's hf backend on a custom multiple_choice task holding exactly these prompts."""
    import lm_eval
    from lm_eval.api.instance import Instance
    from lm_eval.tasks import TaskManager

    tmp = Path(tempfile.mkdtemp(prefix="mmed-lmeval-"))
    data = tmp / "items.jsonl"
    with data.open("w", encoding="utf-8") as fh:
        for i, (r, g) in enumerate(zip(reqs, golds, strict=True)):
            fh.write(json.dumps({"idx": i, "context": r.context, "choices": list(r.continuations), "gold": g},
                                ensure_ascii=False) + "\n")
    (tmp / "mmed_ll.yaml").write_text(
        "task: mmed_ll_bench\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data}\n"
        "test_split: test\noutput_type: multiple_choice\ndoc_to_text: context\ndoc_to_choice: choices\n"
        'doc_to_target: gold\ntarget_delimiter: ""\nmetric_list:\n  - metric: acc\n', encoding="utf-8")
    tm = TaskManager(include_path=str(tmp))
    lm.loglikelihood([Instance("loglikelihood", {}, (r.context, c), 0) for r in reqs[:2] for c in r.continuations[:2]])
    t = CLOCK()
    out = lm_eval.simple_evaluate(model=lm, tasks=["mmed_ll_bench"], task_manager=tm, log_samples=True,
                                  num_fewshot=0, bootstrap_iters=0)
    elapsed = CLOCK() - t
    samples = sorted(out["samples"]["mmed_ll_bench"], key=lambda s: s["doc"]["idx"])
    return elapsed, [[float(r[0]) for r in s["filtered_resps"]] for s in samples]


def argmax(xs: list[float]) -> int:
    return max(range(len(xs)), key=lambda i: xs[i])


def compare(scores: list[list[float]], ref: list[list[float]]) -> tuple[float, float]:
    """Prediction agreement and max |difference| of ``scores`` against the first len(scores) of ``ref``."""
    agree = sum(argmax(a) == argmax(b) for a, b in zip(scores, ref, strict=False)) / len(scores)
    diff = max(abs(x - y) for a, b in zip(scores, ref, strict=False) for x, y in zip(a, b, strict=True))
    return agree, diff


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model folder (default: a tiny model built in a temp folder)")
    ap.add_argument("--n-medqa", type=int, default=40)
    ap.add_argument("--limit", type=int, default=0, help="at most this many items per type (0: all)")
    ap.add_argument("--types", default=",".join(TYPES), help=f"comma-separated subset of {','.join(TYPES)}")
    ap.add_argument("--batch-size", type=int, default=8, help="items per batch (mmedkit)")
    ap.add_argument("--lm-eval-batch-size", type=int, default=32, help="requests per batch (lm-eval)")
    ap.add_argument("--naive-items", type=int, default=2, help="items per type for the naive loop (0: skip)")
    ap.add_argument("--skip-lm-eval", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--cpu-time", action="store_true", help="time in CPU seconds of one torch thread, not wall")
    args = ap.parse_args()

    import torch

    global CLOCK
    if args.cpu_time:
        torch.set_num_threads(1)
        CLOCK = time.process_time

    from mmedkit.models.hf import HFModel

    torch.manual_seed(0)
    model_dir = args.model
    if model_dir is None:
        from mmedkit.models.tiny import build_tiny_model

        model_dir = str(build_tiny_model(Path(tempfile.mkdtemp(prefix="mmed-tiny-")) / "model"))
    sets = load_sets(args.n_medqa)
    lm = HFModel(model_dir, dtype="float32", device="cpu", batch_size=args.batch_size)
    lm_eval_model = None if args.skip_lm_eval else make_lm_eval(model_dir, args.lm_eval_batch_size)
    print(f"model {model_dir}, torch threads {torch.get_num_threads()}")
    report: dict = {"model": model_dir, "types": {}}
    header = (f"{'type':7s} {'scorer':9s} {'items':>5s} {'items/s':>8s} {'mmedkit x':>9s} "
              f"{'fed tok/s':>9s} {'needed tok/s':>12s} {'fwd tok/s':>9s} {'fed/fwd':>7s} {'need/fwd':>8s} "
              f"{'agree':>6s} {'max|dlogp|':>10s}")
    lines = []
    for kind in args.types.split(","):
        reqs, golds = sets[kind]
        if args.limit:
            reqs, golds = reqs[:args.limit], golds[:args.limit]
        if not reqs:
            continue
        need = needed_tokens(lm, reqs)
        fwd0 = forward_throughput(lm)
        t_ours, s_ours, fed = run_mmedkit(lm, reqs)
        fwd = (fwd0 + forward_throughput(lm)) / 2
        n = len(reqs)
        row = {"items": n, "candidates": sum(len(r.continuations) for r in reqs), "items_per_s": n / t_ours,
               "fed_tokens_per_s": fed / t_ours, "needed_tokens_per_s": need / t_ours,
               "forward_tokens_per_s": fwd, "fed_fraction_of_forward": fed / t_ours / fwd,
               "needed_fraction_of_forward": need / t_ours / fwd, "others": {}}
        lines.append(f"{kind:7s} {'mmedkit':9s} {n:5d} {n / t_ours:8.2f} {1:8.2f}x {fed / t_ours:9.0f} "
                     f"{need / t_ours:12.0f} {fwd:9.0f} {fed / t_ours / fwd:7.0%} {need / t_ours / fwd:8.0%}")
        runs = []
        if args.naive_items:
            runs.append(("naive", reqs[:args.naive_items], lambda r: run_naive(lm, r)))
        if lm_eval_model is not None:
            runs.append(("lm-eval", reqs, lambda r, g=golds: run_lm_eval(lm_eval_model, r, g[:len(r)])))
        for name, sub, fn in runs:
            secs, scores = fn(sub)
            agree, diff = compare(scores, s_ours)
            ips = len(sub) / secs
            row["others"][name] = {"items": len(sub), "items_per_s": ips, "mmedkit_speedup": n / t_ours / ips,
                                   "agreement": agree, "max_abs_logprob_diff": diff}
            lines.append(f"{kind:7s} {name:9s} {len(sub):5d} {ips:8.2f} {n / t_ours / ips:8.2f}x {'':>9s} "
                         f"{'':>12s} {'':>9s} {'':>7s} {'':>8s} {agree:6.1%} {diff:10.2e}")
        report["types"][kind] = row
        print(header, *lines, sep="\n", flush=True)
        lines = []
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
