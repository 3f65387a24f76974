"""MB/s per core of the whole corpus pipeline: language ID + medical keywords + quality + exact dedup.

Input: the same as the keyword benchmark of ``benchmarks/bench_corpus.py``: the corpus_dev documents
of all six languages repeated to ``--mb`` megabytes (each repetition with its own ids), written as
``--shards`` JSONL files. The build is ``mmed corpus build`` with the local executor and ONE worker,
so every stage runs in this process on one core: read (tolerant JSONL reader) -> offline language ID
-> MedicalKeywordFilter -> QualityFilter -> write -> exact-dedup signatures; datatrove's duplicate
finder; read back -> exact-dedup filter -> corpus stats -> gzip JSONL output per language. Dropped
documents are not written aside (``write_removed: false``, as for a web-scale run).

Prints input MB per CPU-second of this process (= MB/s per core) and per wall second over all the
stages (the report written afterwards is not timed), with the time each step took (datatrove's own
timing, wall clock). Goal: >= 5 MB/s per core.

    .venv/bin/python benchmarks/bench_pipeline.py [--data ../shared/data/corpus_dev] [--mb 24] [--shards 4]
                                                  [--out runs/bench_pipeline.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from mmedkit.corpus.config import parse_config
from mmedkit.corpus.pipeline import run_stages
from mmedkit.corpus.stats import write_report
from mmedkit.languages import CODES
from mmedkit.utils import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
GOAL = 5.0


def build_input(data: Path, folder: Path, megabytes: float, shards: int) -> tuple[float, int]:
    """Write the repeated corpus as ``shards`` JSONL files; return its size in MB (UTF-8 text) and documents."""
    base = []
    for code in CODES:
        with (data / f"{code}.jsonl").open(encoding="utf-8") as fh:
            base += [json.loads(line) for line in fh]
    size = sum(len(d["text"].encode("utf-8")) for d in base)
    reps = max(1, round(megabytes * 1e6 / size))
    folder.mkdir(parents=True, exist_ok=True)
    files = [(folder / f"part-{i:02d}.jsonl").open("w", encoding="utf-8") for i in range(shards)]
    try:
        n = 0
        for rep in range(reps):
            for doc in base:
                files[n % shards].write(json.dumps({**doc, "id": f"{doc['id']}#{rep}"}, ensure_ascii=False) + "\n")
                n += 1
    finally:
        for fh in files:
            fh.close()
    return size * reps / 1e6, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "corpus_dev")
    ap.add_argument("--mb", type=float, default=24.0, help="size of the repeated input")
    ap.add_argument("--shards", type=int, default=4, help="input files = tasks")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as tmp:
        src, out = Path(tmp) / "input", Path(tmp) / "output"
        mb, docs = build_input(args.data, src, args.mb, args.shards)
        cfg = parse_config({
            "name": "bench", "inputs": [{"path": str(src), "source": "corpus_dev"}],
            "steps": {"language_id": {}, "medical_keywords": {}, "quality": {}, "exact_dedup": {}},
            "output": {"path": str(out), "write_removed": False},
            "executor": {"type": "local", "tasks": args.shards, "workers": 1}}, source="bench_pipeline")
        wall, cpu = time.perf_counter(), time.process_time()
        run_stages(cfg)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        report = write_report(cfg.output.path, cfg.work_dir)
    kept = sum(c["documents"] for c in report["corpus"].values())
    result = {"input_mb": round(mb, 2), "documents": docs, "kept": kept, "cpu_s": round(cpu, 2),
              "wall_s": round(wall, 2), "mb_per_cpu_s": round(mb / cpu, 2), "mb_per_wall_s": round(mb / wall, 2),
              "goal_mb_per_core_s": GOAL, "steps": report["steps"]}
    print(f"input: {mb:.1f} MB, {docs} documents (corpus_dev x repeats) in {args.shards} files; kept {kept}")
    print("| step | in | kept | seconds | MB/s of the pipeline input |")
    print("|---|---:|---:|---:|---:|")
    for row in report["steps"]:
        speed = f"{mb / row['seconds']:.1f}" if row["seconds"] else "–"
        print(f"| {row['step']} | {row['in']} | {row['kept']} | {row['seconds']:.2f} | {speed} |")
    verdict = "meets" if result["mb_per_cpu_s"] >= GOAL else "MISSES"
    print(f"whole pipeline (LID + keywords + quality + exact dedup, all stages, one core): "
          f"{result['mb_per_cpu_s']:.2f} MB per CPU-second, {result['mb_per_wall_s']:.2f} MB per wall second "
          f"-> {verdict} the goal of {GOAL} MB/s per core")
    if args.out:
        atomic_write_json(args.out, result)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
