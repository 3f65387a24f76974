"""Benchmark suites assembled from the original sources.

``mmedbench-open`` rebuilds the six-language MMedBench from its public sources, reproducing
MMedBench's split sizes where they are known. ``english-medical`` is the English medical suite
the study reports (MedQA, MedMCQA, PubMedQA and six MMLU subjects), one task folder each.
A built suite folder carries ``suite.json``: what was built from where, the counts, and how they
compare with MMedBench.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmedkit.bench.items import Item
from mmedkit.bench.loader import write_benchmark
from mmedkit.bench.sources import get_source, import_source
from mmedkit.errors import DataError
from mmedkit.reference import ENGLISH_TASKS, MMEDBENCH_COUNTS
from mmedkit.utils import atomic_write_json

MANIFEST = "suite.json"



@dataclass(frozen=True)
class SourceSpec:
    """Where a suite finds one source under ``--sources``, and how to import it."""

    source: str
    paths: tuple[str, ...]
    """Candidate locations relative to the sources folder, first existing wins."""
    options: dict[str, Any] = field(default_factory=dict)
    task: str | None = None
    """english-medical: the task column this source (or subject) feeds."""


@dataclass(frozen=True)
class SuiteSpec:
    """A named suite."""

    name: str
    description: str
    sources: tuple[SourceSpec, ...]
    per_task: bool = False
    """True: one MMedBench-layout folder per task (english-medical); False: one folder (mmedbench-open)."""


MMLU_SUBJECTS = {"MMLU_CK": "clinical_knowledge", "MMLU_MG": "medical_genetics", "MMLU_AN": "anatomy",
                 "MMLU_PM": "professional_medicine", "MMLU_CB": "college_biology", "MMLU_CM": "college_medicine"}

_MMLU_PATHS = ("mmlu_medical/final_release_mirror/data/mmlu", "mmlu_medical/hendrycks_test_git_785eba5/data",
               "mmlu/data", "mmlu")
_MEDQA_USMLE = ("medqa_usmle_4options/data/medqa/test.jsonl", "medqa/data_clean/questions/US/4_options", "medqa")

SUITES: dict[str, SuiteSpec] = {
    "mmedbench-open": SuiteSpec(
        "mmedbench-open",
        "MMedBench rebuilt from its six public sources (en, zh, ja, fr, ru, es)",
        (
            SourceSpec("medqa-usmle", _MEDQA_USMLE),
            SourceSpec("medqa-mcmle", ("medqa_mcmle_4options/metadata/test/zh/medqa-mcmle.jsonl",
                                       "medqa/data_clean/questions/Mainland/4_options")),
            SourceSpec("igakuqa", ("igakuqa/data", "IgakuQA/data")),
            SourceSpec("frenchmedmcqa", ("frenchmedmcqa/corpus", "FrenchMedMCQA/corpus")),
            SourceSpec("rumeddanet", ("rumeddanet/data/RuMedDaNet", "RuMedDaNet")),
            # MMedBench kept HEAD-QA's image questions (its 2,657 / 2,742 include them): so does this suite.
            SourceSpec("headqa", ("head_qa/data/HEAD", "HEAD"), {"keep_images": True}),
        ),
    ),
    "english-medical": SuiteSpec(
        "english-medical",
        "English medical benchmarks of the study: MedQA (4 options), MedMCQA, PubMedQA, six MMLU subjects",
        (
            SourceSpec("medqa-usmle", _MEDQA_USMLE, task="MedQA"),
            SourceSpec("medmcqa", ("medmcqa/data", "medmcqa"), task="MedMCQA"),
            SourceSpec("pubmedqa", ("pubmedqa/data",), task="PubMedQA"),
            *(SourceSpec("mmlu", _MMLU_PATHS, {"subjects": [subject]}, task=task)
              for task, subject in MMLU_SUBJECTS.items()),
        ),
        per_task=True,
    ),
}


@dataclass
class BuildReport:
    """What ``build_suite`` did."""

    suite: str
    out: Path
    counts: dict[str, dict[str, int]]
    """task or language -> split -> items."""
    missing: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The manifest written as suite.json."""
        return {"suite": self.suite, "counts": self.counts, "missing": self.missing,
                "differences_from_mmedbench": self.differences, "dropped": self.dropped,
                "notes": self.notes}


def get_suite(name: str) -> SuiteSpec:
    """The suite called ``name``."""
    if name not in SUITES:
        raise DataError(f"unknown suite {name!r}; known: {', '.join(SUITES)}")
    return SUITES[name]


def locate(spec: SourceSpec, sources: Path, overrides: dict[str, Path]) -> Path | None:
    """The input of ``spec`` under ``sources`` (or as overridden by ``--source NAME=PATH``)."""
    if spec.source in overrides:
        return overrides[spec.source]
    for rel in spec.paths:
        if (sources / rel).exists():
            return sources / rel
    return None


def _split_counts(items: Sequence[Item], key: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (k, split), n in Counter((getattr(it, key) if key != "task" else it.meta.get("task"), it.split)
                                 for it in items).items():
        out.setdefault(str(k), {})[split] = n
    return out


def build_suite(name: str, sources: str | Path, out: str | Path, *, overrides: dict[str, Path] | None = None,
                seed: int = 20240924) -> BuildReport:
    """Import every source of suite ``name`` found under ``sources`` and write it to ``out``."""
    spec = get_suite(name)
    sources, out = Path(sources), Path(out)
    overrides = overrides or {}
    if not sources.is_dir() and not overrides:
        raise DataError(f"sources folder not found: {sources}")
    report = BuildReport(name, out, {})
    cache: dict[tuple[str, str, str], list[Item]] = {}
    all_items: list[Item] = []
    for src in spec.sources:
        path = locate(src, sources, overrides)
        label = src.task or src.source
        if path is None:
            report.missing.append(f"{label}: {src.source} not found under {sources} "
                                  f"(looked for {', '.join(src.paths)}; pass --source {src.source}=PATH)")
            continue
        key = (src.source, str(path), json.dumps(src.options, sort_keys=True))
        if key not in cache:
            result = import_source(src.source, path, **src.options)
            items = result.items
            if src.source == "igakuqa":
                from mmedkit.bench.sources.igakuqa import split_igakuqa

                items = split_igakuqa(items, n_test=MMEDBENCH_COUNTS["ja"][1], seed=seed)
            cache[key] = items
            if result.dropped:
                report.dropped[label] = dict(result.dropped)
            if src.options.get("keep_images"):
                report.notes.append(f"{label}: questions that need an image are kept, as MMedBench kept them")
        items = cache[key]
        if spec.per_task:
            task_items = [it for it in items if it.split == "test"]
            write_benchmark(task_items, out / str(src.task))
            report.counts[str(src.task)] = {"test": len(task_items)}
        else:
            all_items.extend(items)
    if not spec.per_task:
        if not all_items:
            raise DataError(f"no source of suite {name!r} found under {sources}: " + "; ".join(report.missing))
        write_benchmark(all_items, out)
        report.counts = _split_counts(all_items, "language")
        report.differences = compare_with_mmedbench(report.counts)
    elif not report.counts:
        raise DataError(f"no source of suite {name!r} found under {sources}: " + "; ".join(report.missing))
    atomic_write_json(out / MANIFEST, report.to_json())
    return report


def compare_with_mmedbench(counts: dict[str, dict[str, int]]) -> list[str]:
    """One line per language whose counts differ from MMedBench, with the reason."""
    reasons = {
        "en": "MedQA's training split is not among the sources here; its test split is MMedBench's",
        "zh": "MedQA-MCMLE training split is not among the sources here; its test split is MMedBench's",
        "ja": "MMedBench's IgakuQA split rule is unpublished: a seeded split of 199 text-only test items "
              "stratified by exam year is used instead (same sizes where possible, different items)",
    }
    lines = []
    for lang, (train, test) in MMEDBENCH_COUNTS.items():
        got = counts.get(lang, {})
        got_train, got_test = got.get("train", 0), got.get("test", 0)
        if (got_train, got_test) != (train, test) or lang == "ja":
            why = reasons.get(lang, "source files differ from those MMedBench used")
            lines.append(f"{lang}: train {got_train} / test {got_test} vs MMedBench {train} / {test} — {why}")
    return lines


def suite_tasks(data: str | Path) -> dict[str, Path]:
    """Task folders of a built per-task suite (english-medical), in the study's column order."""
    root = Path(data)
    manifest = root / MANIFEST
    if not manifest.is_file():
        raise DataError(f"{root} is not a built suite (no {MANIFEST}); build it with `mmed bench build`")
    counts = json.loads(manifest.read_text(encoding="utf-8")).get("counts", {})
    order = [t for t in ENGLISH_TASKS if t in counts] + [t for t in counts if t not in ENGLISH_TASKS]
    return {t: root / t for t in order if (root / t).is_dir()}


def describe_sources() -> list[dict[str, str]]:
    """Name, language, license and accepted input of every importer (for ``mmed bench list``)."""
    from mmedkit.bench.sources import list_sources

    return [{"name": s.name, "language": s.language, "title": s.title, "license": s.license, "expects": s.expects}
            for s in list_sources()]


def reference_counts(name: str) -> dict[str, Any]:
    """Known item counts of a suite, for listings before anything is built."""
    if name == "mmedbench-open":
        return {lang: {"train": tr, "test": te} for lang, (tr, te) in MMEDBENCH_COUNTS.items()}
    return {"MedQA": {"test": 1273}, "MedMCQA": {"test": 4183}, "PubMedQA": {"test": 500},
            "MMLU (6 subjects)": {"test": 1089}}


__all__ = ["SUITES", "BuildReport", "build_suite", "get_source", "get_suite", "suite_tasks"]
