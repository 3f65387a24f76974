"""The MMedBench evaluation engine: items in, scored samples and metrics out.

A run is resumable: finished items are appended (and fsynced) to a cache file keyed by a
fingerprint of everything that changes a model's outputs. Rerunning the same command skips
them, and the final files are the same as those of an uninterrupted run.
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
from mmedkit.bench.extract import extract_answer
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
from mmedkit.models.base import GenerationRequest, LanguageModel
from mmedkit.records import read_records
from mmedkit.utils import atomic_write_json, atomic_write_text, git_commit

MODES = ("generate", "loglikelihood")
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

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; expected one of {', '.join(MODES)}")
        PromptConfig(self.format, self.rationale, self.fewshot, self.seed)  # validates

    @property
    def prompt(self) -> PromptConfig:
        """The prompt settings of this run."""
        return PromptConfig(self.format, self.rationale, self.fewshot, self.seed)

    def fingerprint(self) -> str:
        """Hash of the settings that change model outputs (not batch size, chunking or limits)."""
        keep = {k: v for k, v in asdict(self).items() if k not in {"limit", "chunk_size", "skip_invalid",
                                                                   "langs"}}
        opts = keep.pop("model_options")
        keep["model_options"] = {k: v for k, v in opts.items()
                                 if k in {"adapter", "dtype", "revision", "tokenizer"} and v is not None}
        if self.mode == "loglikelihood":
            keep.pop("max_new_tokens")
            keep.pop("rationale")
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def _prompt_for_record(prompt: Any) -> Any:
    return prompt if isinstance(prompt, str) else [dict(m) for m in prompt]


def score_chunk(model: LanguageModel, items: Sequence[Item], cfg: RunConfig, pool: Sequence[Item] | ExemplarPool,
                progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Run the model on ``items`` and return one sample record per item."""
    pcfg = cfg.prompt
    shots = [select_exemplars(pool, it, pcfg.fewshot, pcfg.seed) for it in items]
    records: list[dict[str, Any]] = []
    if cfg.mode == "loglikelihood":
        reqs, cands = zip(*(loglikelihood_request(it, pcfg, ex) for it, ex in zip(items, shots, strict=True)),
                          strict=True)
        scores = model.loglikelihood(list(reqs), progress=progress)
        for it, req, cs, sc in zip(items, reqs, cands, scores, strict=True):
            best = max(range(len(cs)), key=lambda i: sc[i])
            records.append(_record(it, req.context, pred=cs[best], invalid=False, rule="argmax",
                                   extra={"continuation_prefix": req.continuation_prefix,
                                          "scores": {format_answer(c): round(s, 5) for c, s in zip(cs, sc,
                                                                                               strict=True)}}))
        return records
    prompts = [build_prompt(it, pcfg, ex) for it, ex in zip(items, shots, strict=True)]
    stop = ("\n\n### Instruction", "### Input:", "\n\n\n") if pcfg.format == "study" else ()
    max_new = cfg.max_new_tokens if not pcfg.rationale else max(cfg.max_new_tokens, 512)
    outs = model.generate([GenerationRequest(p, max_new_tokens=max_new, stop=stop) for p in prompts],
                          progress=progress)
    for it, p, text in zip(items, prompts, outs, strict=True):
        ex = extract_answer(text, it.options, it.language, it.multi_answer)
        records.append(_record(it, p, pred=ex.letters, invalid=ex.letters is None, rule=ex.rule,
                               extra={"output": text}))
    return records


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


def run_benchmark(cfg: RunConfig, out_dir: str | os.PathLike[str], *, model: LanguageModel | None = None,
                  console: Any = None, show_progress: bool = True) -> dict[str, Any]:
    """Evaluate ``cfg.model`` on ``cfg.data`` and write results.json, samples.jsonl and summary.md.

    Returns the results dictionary. Pass ``model`` to reuse an already loaded backend.
    """
    from mmedkit.bench.progress import item_progress
    from mmedkit.bench.report import write_report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = LoadReport()
    items = load_benchmark(cfg.data, split=cfg.split, langs=cfg.langs, skip_invalid=cfg.skip_invalid,
                           report=report, limit=cfg.limit)
    pool = ExemplarPool([])
    if cfg.fewshot:
        pool = ExemplarPool(load_benchmark(cfg.data, split="train", langs=cfg.langs, skip_invalid=True))
    cache = SampleCache(out, cfg.fingerprint())
    done = cache.load()
    todo = [it for it in items if it.id not in done]
    t0 = time.perf_counter()
    if todo:
        if model is None:
            from mmedkit.models import load_model

            model = load_model(cfg.backend, cfg.model, **cfg.model_options)
        load_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        with item_progress(len(items), len(done), enabled=show_progress, console=console) as advance:
            for s in range(0, len(todo), cfg.chunk_size):
                chunk = todo[s:s + cfg.chunk_size]
                records = score_chunk(model, chunk, cfg, pool, progress=advance)
                cache.append(records)
                done.update((r["id"], r) for r in records)
        eval_s = time.perf_counter() - t1
    else:
        load_s = eval_s = 0.0
    samples = [done[it.id] for it in items]
    metrics = summarize([Scored(s["language"], s["correct"], s["invalid"], s["subject"]) for s in samples],
                        seed=cfg.seed)
    info = model.info() if model is not None else None
    results = {
        "mmedkit_version": __version__,
        "git_commit": git_commit(),
        "config": asdict(cfg),
        "fingerprint": cfg.fingerprint(),
        "model": asdict(info) if info else {"backend": cfg.backend, "model": cfg.model},
        "data": {"source": cfg.data, "split": cfg.split, "loaded": report.loaded, "skipped": report.skipped},
        "metrics": metrics,
        "timing": {"items_this_run": len(todo), "items_from_cache": len(items) - len(todo),
                   "model_load_s": round(load_s, 3), "eval_s": round(eval_s, 3),
                   "items_per_s": round(len(todo) / eval_s, 3) if eval_s > 0 else None},
    }
    atomic_write_text(out / "samples.jsonl", "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples))
    atomic_write_json(out / "results.json", results)
    write_report(results, out)
    if cfg.rationale and cfg.mode == "generate":
        from mmedkit.bench.rationale import score_run

        results["rationale"] = score_run(out, items=items)
    return results
