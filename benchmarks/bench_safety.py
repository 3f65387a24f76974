"""The emergency screen on the evaluation set written for mmedkit: recall, false alarms and latency.

Runs ``mmedkit.serve.safety.screen_conversation`` (or, where that does not exist yet, the single-message
screen on the last user message) on every case of tests/serve/data/safety_eval and prints:

* recall (emergencies flagged) and false-alarm rate (non-emergencies flagged) per language, per kind and
  per category, and overall against the goals (recall >= 0.99, false alarms <= 2%);
* every miss and every false alarm (id, text excerpt, the evidence the screen gave), and the flagged
  emergencies whose category differs from the label;
* latency: p50/p95 over the cases, and the median of repeated runs on one 8,000-character message and
  on one 40-turn conversation (40 user turns, an assistant turn between each), both without an emergency
  so that nothing stops the scan early.

    .venv/bin/python benchmarks/bench_safety.py [--lang en] [--json runs/bench_safety.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mmedkit.languages import CODES
from mmedkit.models.base import Message
from mmedkit.utils import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "serve" / "data" / "safety_eval"
GOAL_RECALL = 0.99
GOAL_FALSE_ALARMS = 0.02
LONG_CHARS = 8000
LONG_TURNS = 40
FIELDS = {"id", "language", "kind", "category", "emergency", "messages"}

Screen = Callable[[Sequence[Message]], Any]


def load_screen() -> tuple[Screen, str]:
    """The conversation screen, or the single-message screen on the last user message where it is missing."""
    from mmedkit.serve import safety

    if hasattr(safety, "screen_conversation"):
        return safety.screen_conversation, "screen_conversation (whole conversation)"
    policy = safety.SafetyPolicy.load()
    return (lambda messages: policy.screen(safety.last_user_text(messages)),
            "SafetyPolicy.screen on the last user message (screen_conversation not available)")


def load_cases(codes: Sequence[str]) -> list[dict]:
    """The cases of ``codes``; exits naming the file and line of a missing file or a bad line."""
    cases = []
    for code in codes:
        path = DATA / f"{code}.jsonl"
        if not path.is_file():
            sys.exit(f"{path}: missing: no evaluation set for {code!r}")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                case = json.loads(line)
            except json.JSONDecodeError as exc:
                sys.exit(f"{path}:{n}: not JSON: {exc}")
            missing = sorted(FIELDS - set(case)) if isinstance(case, dict) else sorted(FIELDS)
            if missing:
                sys.exit(f"{path}:{n}: missing field(s) {', '.join(missing)}")
            cases.append(case)
    return cases


def _verdict(v: Any) -> dict | None:
    if v is None:
        return None
    evidence = v.evidence if isinstance(v.evidence, str) else " + ".join(map(str, v.evidence))
    return {"category": v.category, "language": v.language, "evidence": evidence, "turn": getattr(v, "turn", None)}


def run_cases(screen: Screen, cases: list[dict]) -> list[dict]:
    """Each case with the screen's verdict and the seconds it took."""
    out = []
    for case in cases:
        start = time.perf_counter()
        verdict = screen(case["messages"])
        seconds = time.perf_counter() - start
        out.append({**case, "verdict": _verdict(verdict), "seconds": seconds})
    return out


def _rates(rows: list[dict]) -> dict:
    pos = [r for r in rows if r["emergency"]]
    neg = [r for r in rows if not r["emergency"]]
    caught = sum(r["verdict"] is not None for r in pos)
    alarms = sum(r["verdict"] is not None for r in neg)
    same = sum(r["verdict"] is not None and r["verdict"]["category"] == r["category"] for r in pos)
    return {"cases": len(rows), "emergencies": len(pos), "caught": caught,
            "recall": caught / len(pos) if pos else None, "category_agrees": same,
            "ordinary": len(neg), "false_alarms": alarms, "false_alarm_rate": alarms / len(neg) if neg else None}


def summarize(rows: list[dict]) -> dict:
    """Rates overall and grouped by language, kind and category (non-emergencies by the category they resemble)."""
    groups: dict[str, dict[str, list[dict]]] = {"language": defaultdict(list), "kind": defaultdict(list),
                                                "category": defaultdict(list)}
    for r in rows:
        groups["language"][r["language"]].append(r)
        groups["kind"][r["kind"]].append(r)
        groups["category"][r["category"] or "(none)"].append(r)
    return {"overall": _rates(rows), **{name: {k: _rates(v) for k, v in sorted(g.items())}
                                        for name, g in groups.items()}}


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _timed(screen: Screen, make: Callable[[int], list[Message]], repeats: int) -> dict:
    """Runs of ``screen`` on ``make(0)``, ``make(1)``, ...: a different text each run, so no cache answers."""
    times, flagged = [], None
    for r in range(repeats):
        messages = make(r)
        start = time.perf_counter()
        flagged = screen(messages)
        times.append(time.perf_counter() - start)
    return {"median_ms": 1000 * statistics.median(times), "max_ms": 1000 * max(times), "repeats": repeats,
            "flagged": _verdict(flagged)}


def latency(screen: Screen, rows: list[dict], repeats: int) -> dict:
    """Per-case p50/p95, and the 8,000-character message and 40-turn conversation made of the ordinary questions
    (kind ``mild`` resembling no category) of the evaluated languages."""
    per_case = [1000 * r["seconds"] for r in rows]
    ordinary = [m["content"] for r in rows if r["kind"] == "mild" and r["category"] is None
                for m in r["messages"] if m["role"] == "user"] or ["How much water should I drink a day?"]
    text = ""
    while len(text) < LONG_CHARS:
        text += " ".join(ordinary) + " "

    def long_message(r: int) -> list[Message]:
        tag = f" (run {r})"
        return [{"role": "user", "content": text[:LONG_CHARS - len(tag)] + tag}]

    def long_conversation(r: int) -> list[Message]:
        turns: list[Message] = []
        for i in range(LONG_TURNS):
            if turns:
                turns.append({"role": "assistant", "content": "I see. Anything else you would like to ask?"})
            turns.append({"role": "user", "content": f"{ordinary[i % len(ordinary)]} (run {r}, turn {i})"})
        return turns

    return {"per_case_p50_ms": _quantile(per_case, 0.5), "per_case_p95_ms": _quantile(per_case, 0.95),
            "per_case_max_ms": max(per_case),
            f"message_{LONG_CHARS}_chars": _timed(screen, long_message, repeats),
            f"conversation_{LONG_TURNS}_turns": _timed(screen, long_conversation, repeats)}


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _excerpt(r: dict, width: int = 100) -> str:
    text = " / ".join(m["content"] for m in r["messages"] if m["role"] == "user")
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def print_report(summary: dict, rows: list[dict], lat: dict, screen_name: str) -> None:
    print(f"screen: {screen_name}\n")
    for name in ("language", "kind", "category"):
        print(f"| {name} | emergencies | caught | recall | same category | ordinary | false alarms | rate |")
        print("|---|---|---|---|---|---|---|---|")
        for key, s in [*summary[name].items(), ("**all**", summary["overall"])]:
            print(f"| {key} | {s['emergencies']} | {s['caught']} | {_pct(s['recall'])} | {s['category_agrees']} "
                  f"| {s['ordinary']} | {s['false_alarms']} | {_pct(s['false_alarm_rate'])} |")
        print()
    o = summary["overall"]
    ok_r = o["recall"] is not None and o["recall"] >= GOAL_RECALL
    ok_f = o["false_alarm_rate"] is not None and o["false_alarm_rate"] <= GOAL_FALSE_ALARMS
    print(f"overall recall {_pct(o['recall'])} (goal >= {_pct(GOAL_RECALL)}): {'met' if ok_r else 'NOT met'}")
    print(f"overall false alarms {_pct(o['false_alarm_rate'])} (goal <= {_pct(GOAL_FALSE_ALARMS)}): "
          f"{'met' if ok_f else 'NOT met'}\n")
    misses = [r for r in rows if r["emergency"] and r["verdict"] is None]
    alarms = [r for r in rows if not r["emergency"] and r["verdict"] is not None]
    wrong = [r for r in rows if r["emergency"] and r["verdict"] is not None
             and r["verdict"]["category"] != r["category"]]
    for title, items in (("misses", misses), ("false alarms", alarms), ("flagged under another category", wrong)):
        print(f"{title}: {len(items)}")
        for r in items:
            v = r["verdict"]
            why = "" if v is None else f"  -> {v['category']} ({v['language']}, turn {v['turn']}): {v['evidence']}"
            print(f"  {r['id']} [{r['kind']}, {r['category']}] {_excerpt(r)}{why}")
        print()
    long_msg, long_conv = lat[f"message_{LONG_CHARS}_chars"], lat[f"conversation_{LONG_TURNS}_turns"]
    print(f"latency per case: p50 {lat['per_case_p50_ms']:.2f} ms, p95 {lat['per_case_p95_ms']:.2f} ms, "
          f"max {lat['per_case_max_ms']:.2f} ms")
    print(f"one {LONG_CHARS}-character message: median {long_msg['median_ms']:.1f} ms, max {long_msg['max_ms']:.1f} ms "
          f"({long_msg['repeats']} runs; flagged: {long_msg['flagged']})")
    print(f"one {LONG_TURNS}-turn conversation: median {long_conv['median_ms']:.1f} ms, "
          f"max {long_conv['max_ms']:.1f} ms ({long_conv['repeats']} runs; flagged: {long_conv['flagged']})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lang", action="append", choices=CODES,
                    help="a language to evaluate (repeatable; default: every language with a set)")
    ap.add_argument("--json", type=Path, metavar="OUT", help="also write the figures and every verdict as JSON")
    ap.add_argument("--repeats", type=int, default=20, help="runs of the long message and long conversation")
    args = ap.parse_args()
    codes = args.lang or [c for c in CODES if (DATA / f"{c}.jsonl").is_file()]
    cases = load_cases(codes)
    screen, screen_name = load_screen()
    screen(cases[0]["messages"])  # load data files and compile patterns before timing
    rows = run_cases(screen, cases)
    summary = summarize(rows)
    lat = latency(screen, rows, args.repeats)
    print_report(summary, rows, lat, screen_name)
    if args.json:
        atomic_write_json(args.json, {"screen": screen_name, "languages": codes, "summary": summary,
                                      "latency": lat, "cases": rows})
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
