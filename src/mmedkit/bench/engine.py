"""The MMedBench evaluation engine: items in, scored samples and metrics out.

A run is resumable: finished items are appended (and fsynced) to a cache file keyed by a
fingerprint of everything that changes a model's outputs. Rerunning the same command skips
them, and the final files are the same as those of an uninterrupted run.

Protocols: ``mmedkit`` scores as ``mode`` says (log-likelihood argmax, or generation read by the lenient
cascade). ``study`` reproduces the study's evaluation: its prompt, zero-shot, greedy generation of up to
1,000 new tokens without stop strings, and its strict reading as the headline accuracy
(:func:`~mmedkit.bench.extract.study_strict`); the lenient cascade on the same generations and the
log-likelihood choice are recorded beside it (``metrics_lenient``, ``metrics_loglikelihood``), never mixed in.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mmedkit import __version__
from mmedkit.bench.extract import extract_answer, study_strict, study_strict_decided
from mmedkit.bench.items import Item, format_answer
from mmedkit.bench.loader import LoadReport, load_benchmark
from mmedkit.bench.metrics import Scored, summarize
from mmedkit.bench.prompts import (
    ExemplarPool,
    PromptConfig,
    build_prompt,
    loglikelihood_request,
    select_exemplars,
)
from mmedkit.models.base import GenerationRequest, LanguageModel, LoglikelihoodRequest
from mmedkit.records import read_records
from mmedkit.utils import atomic_write_json, atomic_write_text, git_commit

MODES = ("generate", "loglikelihood")
PROTOCOLS = ("mmedkit", "study")
STUDY_MAX_NEW_TOKENS = 1000
"""The study's inference script: ``model.generate(..., max_new_tokens=1000)`` (greedy: no sampling)."""
CACHE_DIR = ".cache"


@dataclass
class RunConfig:
    """Everything that defines an evaluation run."""

    model: str
    data: str = "demo"
    backend: str = "hf"
    mode: str = "loglikelihood"
    format: str = "study"
    rationale: bool = False
    fewshot: int = 0
    seed: int = 1234
    langs: str | None = None
    split: str = "test"
    limit: int | None = None
    max_new_tokens: int = 64
    chunk_size: int = 32
    skip_invalid: bool = False
    model_options: dict[str, Any] = field(default_factory=dict)
    protocol: str = "mmedkit"
    token_cap: int | None = None
    """``--protocol study`` on a machine too slow for it: at most this many new tokens instead of 1,000. A
    recorded deviation; each sample says whether its strict outcome is decided regardless of the cap."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; expected one of {', '.join(MODES)}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; expected one of {', '.join(PROTOCOLS)}")
        if self.protocol == "study":
            if (self.mode, self.format, self.fewshot) != ("generate", "study", 0):
                raise ValueError("--protocol study generates zero-shot with the study prompt: use it without "
                                 "--mode loglikelihood, --format chat or --fewshot")
            if self.token_cap is not None and not 0 < self.token_cap < STUDY_MAX_NEW_TOKENS:
                raise ValueError(f"--study-token-cap must be between 1 and {STUDY_MAX_NEW_TOKENS - 1}")
            self.max_new_tokens = self.token_cap or STUDY_MAX_NEW_TOKENS
        elif self.token_cap is not None:
            raise ValueError("--study-token-cap caps the study protocol's generation: use it with --protocol study")
        PromptConfig(self.format, self.rationale, self.fewshot, self.seed)  # validates

    @property
    def prompt(self) -> PromptConfig:
        """The prompt settings of this run."""
        return PromptConfig(self.format, self.rationale, self.fewshot, self.seed)

    def fingerprint(self) -> str:
        """Hash of the settings that change model outputs (not batch size, chunking or limits)."""
        keep = {k: v for k, v in asdict(self).items() if k not in {"limit", "chunk_size", "skip_invalid",
                                                                   "langs"}}
        if keep["protocol"] == "mmedkit":
            keep.pop("protocol")
        if keep["token_cap"] is None:
            keep.pop("token_cap")
        opts = keep.pop("model_options")
        keep["model_options"] = {k: v for k, v in opts.items()
                                 if k in {"adapter", "dtype", "revision", "tokenizer"} and v is not None}
        if self.mode == "loglikelihood":
            keep.pop("max_new_tokens")
            keep.pop("rationale")
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def _prompt_for_record(prompt: Any) -> Any:
    return prompt if isinstance(prompt, str) else [dict(m) for m in prompt]


def _loglikelihood(model: LanguageModel, items: Sequence[Item], pcfg: PromptConfig, shots: Sequence[Sequence[Item]],
                   progress: Callable[[int], None] | None) -> list[tuple[LoglikelihoodRequest, frozenset[str],
                                                                         dict[str, float]]]:
    """For each item: the request, the best-scoring answer set and every candidate's score."""
    reqs, cands = zip(*(loglikelihood_request(it, pcfg, ex) for it, ex in zip(items, shots, strict=True)), strict=True)
    scores = model.loglikelihood(list(reqs), progress=progress)
    out = []
    for req, cs, sc in zip(reqs, cands, scores, strict=True):
        best = max(range(len(cs)), key=lambda i: sc[i])
        out.append((req, cs[best], {format_answer(c): round(s, 5) for c, s in zip(cs, sc, strict=True)}))
    return out


def score_chunk(model: LanguageModel, items: Sequence[Item], cfg: RunConfig, pool: Sequence[Item] | ExemplarPool,
                progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Run the model on ``items`` and return one sample record per item."""
    pcfg = cfg.prompt
    shots = [select_exemplars(pool, it, pcfg.fewshot, pcfg.seed) for it in items]
    if cfg.mode == "loglikelihood":
        return [_record(it, req.context, pred=pred, invalid=False, rule="argmax",
                        extra={"continuation_prefix": req.continuation_prefix, "scores": scores})
                for it, (req, pred, scores) in zip(items, _loglikelihood(model, items, pcfg, shots, progress),
                                                   strict=True)]
    study = cfg.protocol == "study"
    prompts = [build_prompt(it, pcfg, ex) for it, ex in zip(items, shots, strict=True)]
    stop = ("\n\n### Instruction", "### Input:", "\n\n\n") if pcfg.format == "study" and not study else ()
    max_new = cfg.max_new_tokens if not pcfg.rationale or study else max(cfg.max_new_tokens, 512)
    outs = model.generate([GenerationRequest(p, max_new_tokens=max_new, stop=stop) for p in prompts],
                          progress=progress)
    records = []
    for it, p, text in zip(items, prompts, outs, strict=True):
        ex = extract_answer(text, it.options, it.language, it.multi_answer)
        if not study:
            records.append(_record(it, p, pred=ex.letters, invalid=ex.letters is None, rule=ex.rule,
                                   extra={"output": text}))
            continue
        strict = study_strict(text, it.options, it.answer)
        capped = {"strict_decided": study_strict_decided(text, it.options)} if cfg.token_cap else {}
        records.append(_record(it, p, pred=strict.letters, invalid=strict.letters is None, rule=strict.rule,
                               extra={"output": text, **capped, "lenient": _scoring(it, ex.letters, ex.rule)}))
    if study:
        scored = _loglikelihood(model, items, pcfg, shots, None)
        for rec, it, (_, pred, scores) in zip(records, items, scored, strict=True):
            rec["loglikelihood"] = {**_scoring(it, pred, "argmax"), "scores": scores}
    return records


def _scoring(it: Item, pred: frozenset[str] | None, rule: str) -> dict[str, Any]:
    """A secondary scoring of one sample (``lenient`` / ``loglikelihood`` in study-protocol records)."""
    return {"extracted": format_answer(pred) if pred else None, "rule": rule,
            "correct": bool(pred is not None and pred == it.answer), "invalid": pred is None}


def _record(it: Item, prompt: Any, *, pred: frozenset[str] | None, invalid: bool, rule: str,
            extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": it.id, "language": it.language, "subject": it.subject,
        "prompt": _prompt_for_record(prompt), **extra,
        "extracted": format_answer(pred) if pred else None, "rule": rule,
        "gold": format_answer(it.answer), "correct": bool(pred is not None and pred == it.answer),
        "invalid": invalid,
    }


class SampleCache:
    """Append-only JSONL cache of finished samples, one file per run fingerprint."""

    def __init__(self, out_dir: Path, fingerprint: str) -> None:
        self.path = out_dir / CACHE_DIR / f"{fingerprint}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def load(self) -> dict[str, dict[str, Any]]:
        """Finished samples by item id; a torn last line (killed mid-write) is ignored."""
        if not self.path.exists():
            return {}
        return {rec.data["id"]: rec.data for rec in read_records(self.path, skip_invalid=True)}

    def append(self, records: Sequence[dict[str, Any]]) -> None:
        """Append records durably."""
        with self.path.open("a", encoding="utf-8") as fh:
            for r in records:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def _metrics(samples: Sequence[dict[str, Any]], seed: int, scoring: str | None = None) -> dict[str, Any]:
    """Metrics of the samples' headline scoring, or of a secondary one recorded under ``scoring``."""
    return summarize([Scored(s["language"], (s[scoring] if scoring else s)["correct"],
                             (s[scoring] if scoring else s)["invalid"], s["subject"]) for s in samples], seed=seed)


def protocol_info(cfg: RunConfig, samples: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """How the headline accuracy was obtained, as recorded in results.json and shown in reports."""
    if cfg.protocol == "study":
        info = {"name": "study", "headline": "study_strict",
                "description": f"the study's protocol: its prompt, zero-shot, greedy generation of up to "
                               f"{STUDY_MAX_NEW_TOKENS:,} new tokens, strict exact-letter scoring; lenient cascade "
                               f"and log-likelihood scores reported beside it",
                "beside": ["lenient", "loglikelihood"]}
        if cfg.token_cap:
            undecided = sum(not s.get("strict_decided", False) for s in samples)
            info["deviation"] = {"token_cap": cfg.token_cap, "strict_undecided": undecided, "n": len(samples)}
            info["description"] += (f"; DEVIATION: generation capped at {cfg.token_cap} new tokens (the study: "
                                    f"{STUDY_MAX_NEW_TOKENS:,}), {undecided} of {len(samples)} strict outcomes could "
                                    f"still change with more tokens; the lenient reading saw only the capped text")
        return info
    scoring = "log-likelihood argmax" if cfg.mode == "loglikelihood" else "generation read by the lenient cascade"
    return {"name": "mmedkit", "headline": "argmax" if cfg.mode == "loglikelihood" else "lenient",
            "description": f"mmedkit's protocol: {scoring}", "beside": []}


RESULT_FILES = ("results.json", "samples.jsonl", "summary.md", "accuracy.png")


def keep_previous_results(out: Path, fingerprint: str) -> Path | None:
    """Move the results of an earlier run with other settings to ``out/previous-<fingerprint>/``; its folder.

    A rerun with the same settings resumes and rewrites the same files, so nothing is moved then.
    """
    try:
        old = json.loads((out / "results.json").read_text(encoding="utf-8")).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        return None
    if not old or old == fingerprint:
        return None
    keep = out / f"previous-{old}"
    keep.mkdir(exist_ok=True)
    for name in RESULT_FILES:
        if (out / name).exists():
            os.replace(out / name, keep / name)
    return keep


def run_benchmark(cfg: RunConfig, out_dir: str | os.PathLike[str], *, model: LanguageModel | None = None,
                  console: Any = None, show_progress: bool = True) -> dict[str, Any]:
    """Evaluate ``cfg.model`` on ``cfg.data`` and write results.json, samples.jsonl and summary.md.

    Returns the results dictionary. Pass ``model`` to reuse an already loaded backend.
    """
    from mmedkit.bench.parallel import Ranks, announce, describe, rank_summary
    from mmedkit.bench.progress import item_progress
    from mmedkit.bench.report import write_report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ranks = Ranks.from_env()  # under torchrun / accelerate launch: this process's share of the items
    kept = keep_previous_results(out, cfg.fingerprint()) if ranks.main else None
    if kept is not None and console is not None:
        console.print(f"[yellow]note:[/] {out} held the results of a run with other settings; they are kept in "
                      f"{kept}", highlight=False)
    report = LoadReport()
    items = load_benchmark(cfg.data, split=cfg.split, langs=cfg.langs, skip_invalid=cfg.skip_invalid,
                           report=report, limit=cfg.limit)
    pool = ExemplarPool([])
    if cfg.fewshot:
        pool = ExemplarPool(load_benchmark(cfg.data, split="train", langs=cfg.langs, skip_invalid=True))
    cache = ranks.cache(out, cfg.fingerprint())
    done = cache.load()
    todo = ranks.share([it for it in items if it.id not in done], cfg.chunk_size)
    options = ranks.model_options(cfg.backend, cfg.model_options)
    if ranks.world > 1 and (line := announce(ranks, cfg.backend, options, len(todo))) and ranks.main and console:
        console.print(line, highlight=False, markup=False)
    t0 = time.perf_counter()
    if todo:
        if model is None:
            from mmedkit.models import load_model

            model = load_model(cfg.backend, cfg.model, **options)
        load_s = time.perf_counter() - t0
        fed0 = getattr(model, "tokens_computed", None)  # None: the backend does not count tokens
        t1 = time.perf_counter()
        with item_progress(len(done) + len(todo), len(done), enabled=show_progress and ranks.main,
                           console=console) as advance:
            for s in range(0, len(todo), cfg.chunk_size):
                chunk = todo[s:s + cfg.chunk_size]
                records = score_chunk(model, chunk, cfg, pool, progress=advance)
                cache.append(records)
                done.update((r["id"], r) for r in records)
        eval_s = time.perf_counter() - t1
        fed = model.tokens_computed - fed0 if fed0 is not None else None
    else:
        load_s = eval_s = 0.0
        fed = None
    done, per_rank = cache.merge(), rank_summary(ranks, cfg.backend, options, len(todo), eval_s)
    ranks.close()  # every exchange is done
    if not ranks.main:  # rank 0 writes the results of every rank
        return {"rank": ranks.rank, "per_rank": per_rank}
    samples = [done[it.id] for it in items]
    metrics = _metrics(samples, cfg.seed)
    info = model.info() if model is not None else None
    results = {
        "mmedkit_version": __version__,
        "git_commit": git_commit(),
        "config": asdict(cfg),
        "fingerprint": cfg.fingerprint(),
        "model": asdict(info) if info else {"backend": cfg.backend, "model": cfg.model},
        "data": {"source": cfg.data, "split": cfg.split, "loaded": report.loaded, "skipped": report.skipped},
        "protocol": protocol_info(cfg, samples),
        "metrics": metrics,
        **({"metrics_lenient": _metrics(samples, cfg.seed, "lenient"),
            "metrics_loglikelihood": _metrics(samples, cfg.seed, "loglikelihood")} if cfg.protocol == "study" else {}),
        "timing": {"items_this_run": len(todo), "items_from_cache": len(items) - len(todo),
                   "model_load_s": round(load_s, 3), "eval_s": round(eval_s, 3),
                   "items_per_s": round(len(todo) / eval_s, 3) if eval_s > 0 else None,
                   "tokens_computed": fed, "tokens_per_s": round(fed / eval_s, 1) if fed and eval_s > 0 else None},
    }
    if ranks.world > 1:
        scored, wall = sum(r["items"] for r in per_rank), max(r["eval_s"] for r in per_rank)
        results["timing"].update(items_this_run=scored, items_from_cache=len(items) - scored, per_rank=per_rank,
                                 items_per_s=round(scored / wall, 3) if wall > 0 else None)
        if console is not None:
            console.print(describe(per_rank), highlight=False, markup=False)
    atomic_write_text(out / "samples.jsonl", "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples))
    atomic_write_json(out / "results.json", results)
    write_report(results, out)
    if cfg.rationale and cfg.mode == "generate":
        from mmedkit.bench.rationale import score_run

        results["rationale"] = score_run(out, items=items)
    return results
