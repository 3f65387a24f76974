"""Reading finished evaluation runs (results.json + samples.jsonl) and the items they scored."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmedkit.bench.items import Item
from mmedkit.bench.loader import load_benchmark
from mmedkit.errors import DataError
from mmedkit.records import read_json, read_records

RESULTS = "results.json"
SAMPLES = "samples.jsonl"


@dataclass
class Run:
    """One run folder as the engine wrote it."""

    path: Path
    results: dict[str, Any]
    samples: list[dict[str, Any]]
    lines: list[int]
    """Line of each sample in samples.jsonl (for error messages)."""

    @property
    def config(self) -> dict[str, Any]:
        """The run's RunConfig as a dictionary."""
        return self.results.get("config") or {}

    @property
    def generated(self) -> bool:
        """Whether the run generated text (``--mode generate``), so it has outputs to read."""
        return self.config.get("mode") == "generate"

    def require_generated(self) -> None:
        """Raise a clear error for a run without generated text."""
        if not self.generated:
            raise DataError(f"mode is {self.config.get('mode')!r}: rationale metrics and judging need a run with "
                            "generated text (mmed bench run --mode generate --rationale)",
                            path=str(self.path / RESULTS), field="config.mode")


def load_run(run_dir: str | os.PathLike[str]) -> Run:
    """Read ``run_dir``/results.json and samples.jsonl."""
    root = Path(run_dir)
    res_path = root / RESULTS
    if not res_path.is_file():
        raise DataError(f"not a run folder (no {RESULTS}; make one with `mmed bench run --out {root}`)",
                        path=str(root))
    results = read_json(res_path)
    if not isinstance(results, dict) or not isinstance(results.get("config"), dict):
        raise DataError("expected an object with a 'config' object", path=str(res_path), field="config")
    samples_path = root / SAMPLES
    if not samples_path.is_file():
        raise DataError(f"missing {SAMPLES}", path=str(root))
    records = list(read_records(samples_path))
    for rec in records:
        if not isinstance(rec.data, dict) or not isinstance(rec.data.get("id"), str) or "language" not in rec.data:
            raise rec.error("expected a sample object with 'id' and 'language'")
    return Run(root, results, [rec.data for rec in records], [rec.line for rec in records])


def run_items(run: Run, items: Sequence[Item] | None = None) -> dict[str, Item]:
    """The benchmark items of ``run`` by id (loaded from its config's data and split unless given);
    every sample must have its item."""
    if items is None:
        cfg = run.config
        items = load_benchmark(cfg.get("data", "demo"), split=cfg.get("split", "test"), langs=cfg.get("langs"),
                               skip_invalid=True)
    by_id = {it.id: it for it in items}
    for line, s in zip(run.lines, run.samples, strict=True):
        if s["id"] not in by_id:
            raise DataError(f"item {s['id']!r} is not in the run's data {run.config.get('data')!r} "
                            f"({run.config.get('split', 'test')} split)", path=str(run.path / SAMPLES), line=line,
                            field="id")
    return by_id


def run_labels(runs: Sequence[Run]) -> list[str]:
    """Short unique names for runs: folder names, with parent folders added where they clash."""
    parts = [r.path.resolve().parts for r in runs]
    depth = 1
    while True:
        labels = ["/".join(p[-depth:]) for p in parts]
        if len(set(labels)) == len(labels) or depth >= max(len(p) for p in parts):
            return labels
        depth += 1
