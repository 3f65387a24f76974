"""Greedy generation speed: mmedkit vs transformers' generate vs lm-evaluation-harness's generate_until.

    python benchmarks/bench_generate.py [--model DIR] [--n 16] [--max-new-tokens 64] [--rationale] [--cpu-time]

All three continue the same MMedBench study prompts (the demo test items, MedQA-USMLE items from
../shared/data first when present) greedily, with the study's stop strings and the same token
limit and batch size. "plain HF" is transformers' ``generate`` on length-sorted, left-padded
batches with ``stop_strings`` (mmedkit's previous path); lm-eval runs ``HFLM.generate_until``.
Tokens/s counts the tokens of the output texts (identical outputs: the same count for every
runner); ratios are measured in this run. "identical" is the share of outputs equal to mmedkit's.
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
STOP = ("\n\n### Instruction", "### Input:", "\n\n\n")


def load_prompts(n: int, rationale: bool = False) -> list[str]:
    from mmedkit.bench.loader import load_benchmark, load_file
    from mmedkit.bench.prompts import PromptConfig, build_prompt
    from mmedkit.languages import get_language

    items = load_file(MEDQA, get_language("en"), "test")[:n] if MEDQA.is_file() else []
    items += load_benchmark("demo")
    return [str(build_prompt(it, PromptConfig(rationale=rationale))) for it in items[:n]]


def run_mmedkit(lm, prompts: list[str], max_new: int) -> tuple[float, list[str]]:
    from mmedkit.models.base import GenerationRequest

    reqs = [GenerationRequest(p, max_new_tokens=max_new, stop=STOP) for p in prompts]
    lm.generate(reqs[:1])  # warm-up
    t = CLOCK()
    out = lm.generate(reqs)
    return CLOCK() - t, out


def run_plain_hf(lm, prompts: list[str], max_new: int, batch_size: int) -> tuple[float, list[str]]:
    import torch

    from mmedkit.models.base import stop_at
    from mmedkit.models.hf import generation_kwargs

    tok = lm.tokenizer
    tok.padding_side = "left"
    order = sorted(range(len(prompts)), key=lambda i: -len(tok(prompts[i])["input_ids"]))
    outs = [""] * len(prompts)
    t = CLOCK()
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            enc = tok([prompts[i] for i in idx], return_tensors="pt", padding=True).to(lm.device)
            gen = lm.model.generate(**enc, **generation_kwargs(tok, max_new, 0.0, STOP))
            texts = tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            for i, text in zip(idx, texts, strict=True):
                outs[i] = stop_at(text, STOP)
    return CLOCK() - t, outs


def run_lm_eval(model_dir: str, prompts: list[str], max_new: int, batch_size: int) -> tuple[float, list[str]]:
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    adds_bos = tok.bos_token_id is not None and tok("x")["input_ids"][:1] == [tok.bos_token_id]
    lm = HFLM(pretrained=model_dir, dtype="float32", device="cpu", batch_size=batch_size, add_bos_token=adds_bos)
    kwargs = {"until": list(STOP), "max_gen_toks": max_new, "do_sample": False}
    lm.generate_until([Instance("generate_until", {}, (prompts[0], dict(kwargs)), 0)], disable_tqdm=True)
    t = CLOCK()
    out = lm.generate_until([Instance("generate_until", {}, (p, dict(kwargs)), i) for i, p in enumerate(prompts)],
                            disable_tqdm=True)
    return CLOCK() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model folder (default: a tiny model built in a temp folder)")
    ap.add_argument("--n", type=int, default=16, help="prompts")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--rationale", action="store_true", help="prompts asking for a rationale first (longer outputs)")
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

    model_dir = args.model
    if model_dir is None:
        from mmedkit.models.tiny import build_tiny_model

        model_dir = str(build_tiny_model(Path(tempfile.mkdtemp(prefix="mmed-tiny-")) / "model"))
    prompts = load_prompts(args.n, args.rationale)
    lm = HFModel(model_dir, dtype="float32", device="cpu", batch_size=args.batch_size)
    print(f"{len(prompts)} prompts, max {args.max_new_tokens} new tokens, batch {args.batch_size}, "
          f"model {model_dir}, torch threads {torch.get_num_threads()}")
    rows = [("mmedkit", *run_mmedkit(lm, prompts, args.max_new_tokens)),
            ("plain HF generate", *run_plain_hf(lm, prompts, args.max_new_tokens, args.batch_size))]
    if not args.skip_lm_eval:
        rows.append(("lm-eval generate_until", *run_lm_eval(model_dir, prompts, args.max_new_tokens,
                                                            args.batch_size)))
    ours = rows[0][2]
    n_tokens = sum(len(lm.encode(o, False)) for o in ours)
    report = {"model": model_dir, "prompts": len(prompts), "output_tokens": n_tokens, "runs": {}}
    print(f"output tokens {n_tokens}\n{'runner':24s} {'seconds':>8s} {'tokens/s':>9s} {'mmedkit x':>9s} "
          f"{'identical':>9s}")
    for name, secs, outs in rows:
        same = sum(a == b for a, b in zip(outs, ours, strict=True)) / len(ours)
        speedup = secs / rows[0][1]
        print(f"{name:24s} {secs:8.2f} {n_tokens / secs:9.1f} {speedup:8.2f}x {same:9.0%}")
        report["runs"][name] = {"seconds": round(secs, 3), "tokens_per_s": round(n_tokens / secs, 2),
                                "mmedkit_speedup": round(speedup, 2), "identical": same}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
