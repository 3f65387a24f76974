"""Loss trajectories of one process and of N processes (torchrun, gloo on CPU) side by side, same global batch.

Continued pretraining of a tiny random Llama (built on the spot) on the demo items' questions and rationales:
the same run (global batch 2 x processes sequences of 64 tokens, at least 4) as 1 process accumulating micro-batches
of 2 and as ``--processes`` processes (``torchrun --standalone``), then one Markdown table of the training loss per
step, the held-out loss before and after, the largest relative difference, and each rank's tokens/s.

    .venv/bin/python benchmarks/bench_distributed.py [--processes 2] [--steps 8] [--out runs/bench_distributed]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from mmedkit.bench.loader import load_benchmark
from mmedkit.models.tiny import build_tiny_model

SETS = ["logging.progress=false", "logging.tensorboard=false", "data.seq_len=64", "data.eval_fraction=0.1",
        "train.micro_batch_size=2", "train.log_every=1", "train.save_every=1000"]


def _run(processes: int, model: Path, corpus: Path, out: Path, steps: int) -> dict:
    sets = [*SETS, f"train.max_steps={steps}", f"train.global_batch_size={2 * max(processes, 2)}",
            f"data.cache_dir='{out.parent / 'cache'}'"]
    launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
              if processes > 1 else [sys.executable])
    args = [*launch, "-m", "mmedkit.train.cli", "pretrain", "tiny-cpu", "--model", str(model), "--data", str(corpus),
            "--out", str(out), "--no-resume"]
    for s in sets:
        args += ["--set", s]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    subprocess.run(args, check=True, env=env, capture_output=True, text=True)
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    return {"loss": {r["step"]: r["loss"] for r in log if r["kind"] == "train"},
            "summary": json.loads((out / "train_summary.json").read_text())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--out", type=Path, default=Path("runs/bench_distributed"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    model = args.out / "tiny"
    if not (model / "config.json").is_file():
        build_tiny_model(model)
    corpus = args.out / "docs.jsonl"
    recs = [{"text": f"{it.question}\n{it.rationale or ''}", "lang": it.language}
            for split in ("train", "test") for it in load_benchmark("demo", split=split)]
    corpus.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")

    one = _run(1, model, corpus, args.out / "one", args.steps)
    many = _run(args.processes, model, corpus, args.out / f"n{args.processes}", args.steps)
    n = args.processes
    rows = [f"| step | 1 process | {n} processes | relative difference |", "|---:|---:|---:|---:|"]
    worst = 0.0
    for step, a in one["loss"].items():
        b = many["loss"][step]
        worst = max(worst, abs(a - b) / abs(a))
        rows.append(f"| {step} | {a:.5f} | {b:.5f} | {abs(a - b) / abs(a):.1e} |")
    for key in ("held_out_before", "held_out_after"):
        a, b = one["summary"][key]["loss"], many["summary"][key]["loss"]
        rows.append(f"| {key.replace('_', ' ')} | {a:.5f} | {b:.5f} | {abs(a - b) / abs(a):.1e} |")
    s1, sn = one["summary"], many["summary"]
    rows.append(f"\nglobal batch {sn['global_batch_size']} sequences of 64 tokens; largest relative difference of a "
                f"step loss {worst:.1e}")
    rows.append(f"tokens/s: 1 process {s1['useful_tokens_per_s_this_session']:,.0f}; {n} processes "
                f"{sn['useful_tokens_per_s_this_session']:,.0f} (per rank: "
                + ", ".join(f"{v:,.0f}" for v in sn["tokens_per_s_per_rank_this_session"]) + ")")
    text = "\n".join(rows)
    (args.out / "trajectories.md").write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
