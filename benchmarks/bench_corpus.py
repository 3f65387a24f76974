"""The medical keyword filter against the study's filter: quality and speed, in one run.

(a) Precision, recall and F1 per language and per source on ../shared/data/corpus_dev of our
    ``MedicalKeywordFilter`` (run as a datatrove step on Documents, default thresholds) next to the
    study's filter as its script runs it (``benchmarks/study_baseline.py``, the study's own lists).
(b) Throughput in MB of UTF-8 per CPU-second of one process (one core) of both filters on the same
    input: the development documents of all six languages repeated to ``--mb`` megabytes.

    .venv/bin/python benchmarks/bench_corpus.py [--data ../shared/data/corpus_dev] [--mb 24]
                                                [--out runs/bench_corpus.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

from datatrove.data import Document

from mmedkit.corpus.calibrate import LabelledDoc, confusion, prf, read_labelled, source_key
from mmedkit.corpus.keywords import DEFAULT_THRESHOLDS, MedicalKeywordFilter, matcher_for
from mmedkit.languages import CODES
from mmedkit.utils import atomic_write_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from study_baseline import StudyKeywordFilter  # noqa: E402  (a sibling script, not a package)

ROOT = Path(__file__).resolve().parents[1]


def _row(pred: list[bool], gold: list[bool]) -> dict:
    import numpy as np

    tp, fp, fn, tn = confusion(np.array(pred, dtype=bool), np.array(gold, dtype=bool))
    scores = prf(tp, fp, fn)
    if not any(gold):  # a source without medical documents: only the number kept (false positives) means much
        scores = {"precision": None, "recall": None, "f1": None}
    return {"documents": len(gold), "medical": sum(gold), "kept": tp + fp, **scores}


def quality(docs: list[LabelledDoc]) -> dict:
    """Per language and per (language, source): P/R/F1 of ours and of the study's filter."""
    ours_step = MedicalKeywordFilter()
    study = {code: StudyKeywordFilter(code) for code in CODES}
    groups: dict[tuple[str, str], list[tuple[bool, bool, bool]]] = defaultdict(list)
    for i, d in enumerate(docs):
        kept = ours_step.filter(Document(text=d.text, id=str(i), metadata={"language": d.lang})) is True
        row = (d.medical, kept, study[d.lang].keep(d.text))
        groups[(d.lang, "all")].append(row)
        groups[(d.lang, source_key(d.source))].append(row)
    out: dict = {}
    for (code, src), rows in sorted(groups.items(), key=lambda kv: (CODES.index(kv[0][0]), kv[0][1] != "all")):
        gold = [r[0] for r in rows]
        out.setdefault(code, {})[src] = {"ours": _row([r[1] for r in rows], gold),
                                         "study": _row([r[2] for r in rows], gold)}
    return out


def throughput(docs: list[LabelledDoc], megabytes: float) -> dict:
    """MB/s per core of our matcher + thresholds and of the study's filter on the same repeated input."""
    base = [(d.lang, d.text) for d in docs]
    size = sum(len(t.encode("utf-8")) for _, t in base)
    reps = max(1, round(megabytes * 1e6 / size))
    corpus = base * reps
    total_mb = size * reps / 1e6
    for code in CODES:  # build both sides' automata / lists before timing
        matcher_for(code)
    ours_step = MedicalKeywordFilter()
    study = {code: StudyKeywordFilter(code) for code in CODES}
    documents = [Document(text=t, id=str(i), metadata={"language": c}) for i, (c, t) in enumerate(corpus)]

    start = time.process_time()
    kept_ours = sum(ours_step.filter(doc) is True for doc in documents)
    cpu_ours = time.process_time() - start
    start = time.process_time()
    kept_study = sum(study[c].keep(t) for c, t in corpus)
    cpu_study = time.process_time() - start
    per_lang = {}
    for code in CODES:
        texts = [t for c, t in base if c == code]
        mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
        m, s = matcher_for(code), study[code]
        start = time.process_time()
        for _ in range(3):
            for t in texts:
                m.scan(t)
        ours = 3 * mb / (time.process_time() - start)
        start = time.process_time()
        for t in texts:
            s.keep(t)
        per_lang[code] = {"ours_mb_s": ours, "study_mb_s": mb / (time.process_time() - start)}
    return {"input_mb": total_mb, "documents": len(corpus), "repeats": reps,
            "ours_mb_s": total_mb / cpu_ours, "study_mb_s": total_mb / cpu_study,
            "speedup": cpu_study / cpu_ours, "kept_ours": kept_ours, "kept_study": kept_study, "per_language": per_lang}


def _f(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "corpus_dev")
    ap.add_argument("--mb", type=float, default=24.0, help="size of the repeated input for the speed test")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_corpus.json")
    args = ap.parse_args()
    files = [args.data / f"{code}.jsonl" for code in CODES]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        sys.exit(f"labelled development data not found: {', '.join(missing)}")
    docs = read_labelled(files)

    q = quality(docs)
    print(f"## (a) Quality on {args.data} — ours (default thresholds {DEFAULT_THRESHOLDS})")
    print("##     vs the study's filter (its script's rule, its lists and thresholds)\n")
    print("| lang | source | docs | medical | ours kept | ours P | ours R | ours F1 | study kept | study P | study R "
          "| study F1 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for code, by_src in q.items():
        for src, r in by_src.items():
            o, s = r["ours"], r["study"]
            name = f"**{code}**" if src == "all" else code
            print(f"| {name} | {src} | {o['documents']} | {o['medical']} | {o['kept']} | {_f(o['precision'])} "
                  f"| {_f(o['recall'])} | {_f(o['f1'])} | {s['kept']} | {_f(s['precision'])} | {_f(s['recall'])} "
                  f"| {_f(s['f1'])} |")

    t = throughput(docs, args.mb)
    print(f"\n## (b) Throughput, one process, {t['input_mb']:.1f} MB ({t['documents']} documents, all six languages)\n")
    print(f"ours (MedicalKeywordFilter step): {t['ours_mb_s']:.1f} MB/s per core, kept {t['kept_ours']}")
    print(f"study's filter:                   {t['study_mb_s']:.1f} MB/s per core, kept {t['kept_study']}")
    print(f"speed-up: {t['speedup']:.1f}x\n")
    print("| lang | ours MB/s | study MB/s |\n|---|---|---|")
    for code, r in t["per_language"].items():
        print(f"| {code} | {r['ours_mb_s']:.1f} | {r['study_mb_s']:.1f} |")
    atomic_write_json(args.out, {"quality": q, "throughput": t, "default_thresholds": DEFAULT_THRESHOLDS})
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
