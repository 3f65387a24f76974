"""Compare offline language-ID backends on ../shared/data/corpus_dev (the ``lang`` field is the truth).

For each backend that ships its model inside its pip package (see ``mmedkit.corpus.lid.BACKENDS``):
accuracy per language on whole documents and on 60-character snippets cut from the middle of each
document (web text is often that short), throughput in MB of UTF-8 per CPU-second on one core, and the
model's load time. For the fastText default it also prints accuracy and throughput on the pipeline's
1,000-character prefix and, on that prefix, the lowest score of a correctly identified document per
language and the share each default score floor keeps. Every backend predicts among all the languages it
knows, as it would on a web crawl, not among the six.

    .venv/bin/python benchmarks/bench_lid.py [--data ../shared/data/corpus_dev] [--out runs/bench_lid.json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

from mmedkit.corpus.lid import BACKENDS, DEFAULT_BACKEND, DEFAULT_FLOORS, load_backend
from mmedkit.languages import CODES
from mmedkit.utils import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
SNIPPET = 60
PREFIX = 1000


def load_docs(data: Path) -> list[dict]:
    """Every labelled document of ``<data>/<code>.jsonl``, in language order."""
    docs = []
    for code in CODES:
        path = data / f"{code}.jsonl"
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                row = json.loads(line)
                if not isinstance(row.get("text"), str) or row.get("lang") not in CODES:
                    raise ValueError(f"{path}:{lineno}: expected string 'text' and a known 'lang'")
                docs.append(row)
    return docs


def snippet(text: str) -> str:
    """A ``SNIPPET``-character window from the middle of ``text``, on one line."""
    mid = max(0, len(text) // 2 - SNIPPET // 2)
    return " ".join(text[mid: mid + SNIPPET].split())


def evaluate(predict, texts: list[str], truth: list[str]) -> tuple[dict[str, float], list[tuple[str, float]], float]:
    """Per-language accuracy, the predictions, and the CPU seconds spent predicting."""
    start = time.process_time()
    preds = [predict(t) for t in texts]
    cpu = time.process_time() - start
    right: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (code, _), gold in zip(preds, truth, strict=True):
        right[gold][0] += code == gold
        right[gold][1] += 1
    acc = {code: right[code][0] / right[code][1] for code in CODES if right[code][1]}
    return acc, preds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "corpus_dev")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated backend names")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()

    docs = load_docs(args.data)
    truth = [d["lang"] for d in docs]
    full = [d["text"] for d in docs]
    short = [snippet(t) for t in full]
    mb = sum(len(t.encode("utf-8")) for t in full) / 1e6
    print(f"{len(docs)} documents, {mb:.1f} MB; snippets of {SNIPPET} characters")

    results: dict[str, dict] = {}
    for name in args.backends.split(","):
        t0 = time.perf_counter()
        predict = load_backend(name)
        load_s = time.perf_counter() - t0
        acc_full, preds, cpu = evaluate(predict, full, truth)
        acc_short, _, _ = evaluate(predict, short, truth)
        row = {"package": BACKENDS[name].package, "load_s": round(load_s, 2),
               "mb_per_cpu_s": round(mb / cpu, 2),
               "accuracy_full": {k: round(v, 4) for k, v in acc_full.items()},
               "accuracy_snippet": {k: round(v, 4) for k, v in acc_short.items()},
               "macro_full": round(sum(acc_full.values()) / len(acc_full), 4),
               "macro_snippet": round(sum(acc_short.values()) / len(acc_short), 4)}
        if name == DEFAULT_BACKEND:
            acc_prefix, preds, cpu_prefix = evaluate(predict, [t[:PREFIX] for t in full], truth)
            row["mb_per_cpu_s_prefix"] = round(mb / cpu_prefix, 2)
            row["accuracy_prefix"] = {k: round(v, 4) for k, v in acc_prefix.items()}
            lowest: dict[str, float] = {}
            for (code, score), gold in zip(preds, truth, strict=True):
                if code == gold:
                    lowest[gold] = min(lowest.get(gold, 1.0), score)
            row["lowest_correct_score"] = {k: round(v, 4) for k, v in lowest.items()}
            row["kept_by_default_floors"] = {
                gold: round(sum(c == gold and s >= DEFAULT_FLOORS[gold] for (c, s), g in zip(preds, truth, strict=True)
                                if g == gold) / truth.count(gold), 4) for gold in CODES}
        results[name] = row

    head = "| backend | " + " | ".join(CODES) + " | macro | snippet " + " | ".join(CODES) + \
           " | snippet macro | MB/CPU-s | load s |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name, row in results.items():
        cells = [f"{row['accuracy_full'][c]:.3f}" for c in CODES] + [f"{row['macro_full']:.3f}"]
        cells += [f"{row['accuracy_snippet'][c]:.3f}" for c in CODES] + [f"{row['macro_snippet']:.3f}"]
        cells += [f"{row['mb_per_cpu_s']:.1f}", f"{row['load_s']:.1f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if DEFAULT_BACKEND in results:
        row = results[DEFAULT_BACKEND]
        print(f"{DEFAULT_BACKEND} on the first {PREFIX} characters (the pipeline default): "
              f"{row['mb_per_cpu_s_prefix']:.1f} MB/CPU-s, accuracy {row['accuracy_prefix']}")
        print(f"{DEFAULT_BACKEND} lowest score of a correct document (first {PREFIX} characters): "
              f"{row['lowest_correct_score']}")
        print(f"{DEFAULT_BACKEND} share of documents kept by the default floors {DEFAULT_FLOORS}: "
              f"{row['kept_by_default_floors']}")
    if args.out:
        atomic_write_json(args.out, {"documents": len(docs), "mb": round(mb, 2), "snippet_chars": SNIPPET,
                                     "backends": results})
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
