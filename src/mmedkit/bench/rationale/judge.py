"""Pairwise LLM-as-judge ranking of the rationales of several runs on the same items.

For every item and every pair of runs, the judge sees the question, its options, the correct
answer (and the reference rationale, unless turned off) and the two explanations, and says which
is the better medical explanation. Each pair is asked in both orders; when the two verdicts differ
the comparison counts as a tie, and the share of pairs whose verdicts agree is the swap
(order) consistency. Verdicts are read from the text (``[[1]]``, ``[[2]]``, ``[[tie]]``) or, with
``verdict="loglikelihood"``, by comparing the judge's log-probabilities of " 1" and " 2".

Judgements are cached by judge model, prompt and the two texts, so a rerun, or a new run added to
the pool, only asks for what is missing. An empty explanation loses to a non-empty one and two
identical ones tie, without a call.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from mmedkit.bench.engine import SampleCache
from mmedkit.bench.items import Item
from mmedkit.bench.rationale import doc
from mmedkit.bench.rationale.ranking import Verdict, ranking
from mmedkit.bench.rationale.runs import Run, load_run, run_items, run_labels
from mmedkit.bench.rationale.text import extract_rationale
from mmedkit.languages import LANGUAGES, get_language, parse_langs
from mmedkit.models.base import GenerationRequest, LanguageModel, LoglikelihoodRequest, Message
from mmedkit.utils import atomic_write_json, atomic_write_text

VERDICTS = ("generate", "loglikelihood")
JUDGE_JSON = "judge.json"
JUDGEMENTS = "judgements.jsonl"
JUDGE_MD = "judge.md"
LL_PREFIX = "Better explanation:"

SYSTEM = ("You are an experienced physician who reads {language} fluently. You assess explanations written "
          "for {language} medical licensing exam questions.")
USER = """Below is a {language} medical exam question with its options and correct answer{ref_clause}, followed by \
two explanations written by different assistants. Decide which is the better medical explanation: medically \
accurate, consistent with the correct answer, clear about why it is right and why the other options are wrong, and \
written in {language}. Do not let the order of the two explanations or their length decide.

### Question
{question}

### Options
{options}

### Correct answer
{gold}
{reference}
### Explanation 1
{first}

### Explanation 2
{second}

{instruction}"""
INSTRUCTIONS = {
    "generate": 'Reply with "[[1]]" if explanation 1 is better, "[[2]]" if explanation 2 is better, or "[[tie]]" '
                "if they are equally good.",
    "loglikelihood": "Reply with the number of the better explanation, 1 or 2.",
}
_VERDICT_RE = re.compile(r"\[\[\s*(1|2|tie)\s*\]\]", re.IGNORECASE)


@dataclass
class JudgeConfig:
    """Who judges and how."""

    judge_model: str
    backend: str = "openai"
    verdict: str = "generate"
    include_reference: bool = True
    max_new_tokens: int = 64
    human_checked_only: bool = False
    langs: str | None = None
    limit: int | None = None
    """At most this many items per language (the first by id)."""
    chunk_size: int = 16
    bootstrap: int = 1000
    seed: int = 0
    model_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict mode {self.verdict!r}; expected one of {', '.join(VERDICTS)}")

    def prompt_hash(self) -> str:
        """Hash of everything that shapes the judge's prompt and how its verdict is read."""
        text = json.dumps([SYSTEM, USER, INSTRUCTIONS[self.verdict], LL_PREFIX, self.verdict,
                           self.include_reference, self.max_new_tokens if self.verdict == "generate" else None])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def fingerprint(self) -> str:
        """Cache namespace: judge model, backend and prompt."""
        text = json.dumps([self.judge_model, self.backend, self.prompt_hash()])
        return "judge-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def judge_prompt(item: Item, first: str, second: str, cfg: JudgeConfig) -> list[Message]:
    """The chat messages asking which of two explanations of ``item`` is better."""
    name = get_language(item.language).name
    ref = item.rationale if cfg.include_reference and item.rationale else None
    user = USER.format(
        language=name, ref_clause=", a reference explanation" if ref else "", question=item.question.strip(),
        options="\n".join(f"{k}. {v}" for k, v in item.options.items()),
        gold=", ".join(f"{k}. {item.options[k]}" for k in sorted(item.answer)),
        reference=f"\n### Reference explanation\n{ref.strip()}\n" if ref else "",
        first=first.strip(), second=second.strip(), instruction=INSTRUCTIONS[cfg.verdict])
    return [{"role": "system", "content": SYSTEM.format(language=name)}, {"role": "user", "content": user}]


def parse_verdict(text: str) -> str | None:
    """``1``, ``2`` or ``tie`` from a judge's reply (the first ``[[...]]`` mark), or None."""
    m = _VERDICT_RE.search(text or "")
    return m.group(1).lower() if m else None


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class _Ask:
    key: str
    item: Item
    first: str
    second: str


def _ask(model: LanguageModel, asks: Sequence[_Ask], cfg: JudgeConfig) -> list[dict[str, Any]]:
    prompts = [judge_prompt(a.item, a.first, a.second, cfg) for a in asks]
    if cfg.verdict == "generate":
        texts = model.generate([GenerationRequest(p, max_new_tokens=cfg.max_new_tokens) for p in prompts])
        got = [(parse_verdict(t), t) for t in texts]
    else:
        scores = model.loglikelihood([LoglikelihoodRequest(p, (" 1", " 2"), continuation_prefix=LL_PREFIX)
                                      for p in prompts])
        got = [("1" if s1 > s2 else "2" if s2 > s1 else "tie", [round(s1, 5), round(s2, 5)]) for s1, s2 in scores]
    return [{"id": a.key, "item": a.item.id, "first": _sha(a.first), "second": _sha(a.second), "verdict": v, "raw": raw}
            for a, (v, raw) in zip(asks, got, strict=True)]


def _pick_items(items: dict[str, Item], runs: Sequence[Run], cfg: JudgeConfig) -> list[Item]:
    common = set.intersection(*({s["id"] for s in r.samples} for r in runs))
    wanted = {lang.code for lang in parse_langs(cfg.langs)}
    chosen: list[Item] = []
    for code in LANGUAGES:
        if code not in wanted:
            continue
        mine = sorted((items[i] for i in common if items[i].language == code), key=lambda it: it.id)
        if cfg.human_checked_only:
            mine = [it for it in mine if it.rationale and it.human_checked]
        chosen += mine[:cfg.limit] if cfg.limit is not None else mine
    return chosen


def _winner(verdict: str | None, first: int, second: int) -> int | str | None:
    """Index of the run that won one ordered judgement, ``tie``, or None for an unreadable verdict."""
    return {"1": first, "2": second, "tie": "tie"}.get(verdict) if verdict else None


def judge_runs(run_dirs: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str], cfg: JudgeConfig, *,
               model: LanguageModel | None = None, cache_dir: str | os.PathLike[str] | None = None,
               items: Sequence[Item] | None = None) -> dict[str, Any]:
    """Judge every pair of runs on their common items, in both orders; write judge.json,
    judgements.jsonl and judge.md to ``out_dir``; return the judge summary."""
    if len(run_dirs) < 2:
        raise ValueError("judging needs at least two runs")
    runs = [load_run(d) for d in run_dirs]
    for r in runs:
        r.require_generated()
    names = run_labels(runs)
    by_id = run_items(runs[0], items)
    for r in runs[1:]:
        run_items(r, list(by_id.values()))
    chosen = _pick_items(by_id, runs, cfg)
    texts = [{s["id"]: extract_rationale(s.get("output")) for s in r.samples} for r in runs]
    cache = SampleCache(Path(cache_dir or out_dir), cfg.fingerprint())
    done = cache.load()
    plan: list[_Pair] = []
    missing: dict[str, _Ask] = {}
    for it in chosen:
        for i, j in combinations(range(len(runs)), 2):
            a, b = texts[i][it.id], texts[j][it.id]
            if not a or not b or a == b:  # an empty explanation loses, identical ones tie: no call
                plan.append(_Pair(it, i, j, outcome=0.5 if a == b else (1.0 if a else 0.0)))
                continue
            asks = []
            for first, second in ((a, b), (b, a)):
                key = hashlib.sha256(f"{it.id}\0{_sha(first)}\0{_sha(second)}".encode()).hexdigest()[:24]
                asks.append(_Ask(key, it, first, second))
                if key not in done:
                    missing.setdefault(key, asks[-1])
            plan.append(_Pair(it, i, j, ab=asks[0], ba=asks[1]))
    todo = list(missing.values())
    if todo:
        if model is None:
            from mmedkit.models import load_model

            model = load_model(cfg.backend, cfg.judge_model, **cfg.model_options)
        for s in range(0, len(todo), cfg.chunk_size):
            recs = _ask(model, todo[s:s + cfg.chunk_size], cfg)
            cache.append(recs)
            done.update((r["id"], r) for r in recs)
    rows, verdicts = _combine(plan, done, names)
    summary = _summary(cfg, runs, names, rows, verdicts, asked=len(todo), cache_path=cache.path)
    out = Path(out_dir)
    atomic_write_text(out / JUDGEMENTS, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    atomic_write_json(out / JUDGE_JSON, summary)
    atomic_write_text(out / JUDGE_MD, judge_markdown(summary))
    return summary


@dataclass(frozen=True)
class _Pair:
    item: Item
    i: int
    j: int
    ab: _Ask | None = None
    ba: _Ask | None = None
    outcome: float | None = None
    """Set when no call was needed (an empty explanation)."""


def _combine(plan: list[_Pair], done: dict[str, dict[str, Any]],
             names: list[str]) -> tuple[list[dict[str, Any]], list[Verdict]]:
    rows: list[dict[str, Any]] = []
    verdicts: list[Verdict] = []
    for p in plan:
        row: dict[str, Any] = {"item": p.item.id, "language": p.item.language, "run_a": names[p.i],
                               "run_b": names[p.j]}
        if p.ab is None or p.ba is None:
            outcome = float(p.outcome if p.outcome is not None else 0.5)
            row.update({"rule": "empty or identical", "verdict_ab": None, "verdict_ba": None, "consistent": None})
        else:
            v1, v2 = done[p.ab.key]["verdict"], done[p.ba.key]["verdict"]
            w1, w2 = _winner(v1, p.i, p.j), _winner(v2, p.j, p.i)
            valid = w1 is not None and w2 is not None
            agree = valid and w1 == w2
            outcome = 0.5 if not agree or w1 == "tie" else (1.0 if w1 == p.i else 0.0)
            row.update({"rule": "judge", "verdict_ab": v1, "verdict_ba": v2, "consistent": agree if valid else None})
        row["winner"] = "tie" if outcome == 0.5 else names[p.i if outcome == 1.0 else p.j]
        rows.append(row)
        verdicts.append((p.item.id, p.i, p.j, outcome))
    return rows, verdicts


def _summary(cfg: JudgeConfig, runs: list[Run], names: list[str], rows: list[dict[str, Any]],
             verdicts: list[Verdict], *, asked: int, cache_path: Path) -> dict[str, Any]:
    judged = [r for r in rows if r["rule"] == "judge"]
    valid = [r for r in judged if r["consistent"] is not None]
    ordered = [v for r in judged for v in (r["verdict_ab"], r["verdict_ba"])]
    decisive = [v for v in ordered if v in ("1", "2")]
    return {
        "judge": {"model": cfg.judge_model, "backend": cfg.backend, "verdict": cfg.verdict,
                  "prompt_hash": cfg.prompt_hash(), "include_reference": cfg.include_reference},
        "config": {k: v for k, v in asdict(cfg).items() if k != "model_options"},
        "runs": [{"name": n, "path": str(r.path), "model": (r.results.get("model") or {}).get("model")}
                 for n, r in zip(names, runs, strict=True)],
        "counts": {"items": len({r["item"] for r in rows}), "pairs": len(rows), "judged_pairs": len(judged),
                   "decided_without_judge": len(rows) - len(judged), "judgements": 2 * len(judged),
                   "asked_this_run": asked, "reused": 2 * len(judged) - asked,
                   "unreadable_verdicts": sum(v is None for v in ordered)},
        "swap_consistency": round(sum(r["consistent"] for r in valid) / len(valid), 4) if valid else None,
        "first_position_rate": round(decisive.count("1") / len(decisive), 4) if decisive else None,
        "tie_rate": round(sum(r["winner"] == "tie" for r in rows) / len(rows), 4) if rows else None,
        "cache": str(cache_path),
        **ranking(names, verdicts, reps=cfg.bootstrap, seed=cfg.seed),
    }


def pct(x: float | None) -> str:
    """A share as ``83.3%`` (``–`` when undefined)."""
    return "–" if x is None else f"{100 * x:.1f}%"


def judge_blocks(summary: dict[str, Any], *, level: int = 1) -> list[doc.Block]:
    """Ranking table, win-rate matrix and consistency of a judge summary, as document blocks."""
    j, c = summary["judge"], summary["counts"]
    names = summary["models"]
    return [
        doc.Heading(f"Judge ranking by {j['model']} ({j['backend']}, verdict by {j['verdict']})", level),
        doc.Bullets([
            f"{c['items']} items, {c['pairs']} pairs ({c['judged_pairs']} judged in both orders, "
            f"{c['decided_without_judge']} decided without the judge: an empty or identical rationale); "
            f"{c['asked_this_run']} judgements asked in the last run, {c['reused']} reused; "
            f"{c['unreadable_verdicts']} unreadable.",
            f"Swap consistency (both orders agree): {pct(summary['swap_consistency'])}; first position chosen in "
            f"{pct(summary['first_position_rate'])} of decisive verdicts; ties {pct(summary['tie_rate'])}.",
            f"Prompt hash {j['prompt_hash']}. {summary['method']}.",
        ]),
        doc.Table(["Rank", "Run", "Bradley–Terry score", "95% CI"],
                  [[str(r["rank"]), r["model"], f"{r['score']:+.3f}", f"{r['ci95'][0]:+.3f} – {r['ci95'][1]:+.3f}"]
                   for r in summary["ranking"]]),
        doc.Para("Win rate of the row's run against the column's (ties count half):"),
        doc.Table(["", *names], [[n, *(pct(x) for x in row)]
                                 for n, row in zip(names, summary["win_rate"], strict=True)]),
    ]


def judge_markdown(summary: dict[str, Any]) -> str:
    """The judge summary as Markdown."""
    return doc.to_markdown(judge_blocks(summary))
