"""Running a per-task suite (english-medical) and reporting it as the study's Table 3 does."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from mmedkit.bench.engine import RunConfig, run_benchmark
from mmedkit.bench.suites import suite_tasks
from mmedkit.models.base import LanguageModel
from mmedkit.reference import ENGLISH_ACCURACY, ENGLISH_TASKS
from mmedkit.utils import atomic_write_json, atomic_write_text


def run_suite(cfg: RunConfig, out: str | Path, *, model: LanguageModel | None = None, console: Any = None,
              show_progress: bool = True) -> dict[str, Any]:
    """Evaluate every task folder of the built suite at ``cfg.data``; one results folder per task.

    The model is loaded once and shared by the tasks. Returns ``{"tasks": {task: accuracy}, ...}``
    and writes ``suite_results.json`` and ``suite_summary.md`` in ``out``.
    """
    out = Path(out)
    tasks = suite_tasks(cfg.data)
    if model is None:
        from mmedkit.models import load_model

        model = load_model(cfg.backend, cfg.model, **cfg.model_options)
    accuracy: dict[str, float | None] = {}
    ci: dict[str, list[float]] = {}
    n: dict[str, int] = {}
    for task, folder in tasks.items():
        task_cfg = dataclasses.replace(cfg, data=str(folder), langs="en")
        if console is not None:
            console.print(f"[bold]{task}[/]")
        res = run_benchmark(task_cfg, out / task, model=model, console=console, show_progress=show_progress)
        block = res["metrics"]["per_language"]["en"]
        accuracy[task], ci[task], n[task] = block["accuracy"], block["ci95"], block["n"]
    scored = [v for v in accuracy.values() if v is not None]
    summary = {"model": cfg.model, "mode": cfg.mode, "tasks": accuracy, "ci95": ci, "n": n,
               "average": round(sum(scored) / len(scored), 2) if scored else None,
               "reference": ENGLISH_ACCURACY}
    atomic_write_json(out / "suite_results.json", summary)
    atomic_write_text(out / "suite_summary.md", english_markdown(summary))
    return summary


def english_markdown(summary: dict[str, Any]) -> str:
    """Table 3 layout: one row for this run, then the study's published rows."""
    cols = [t for t in ENGLISH_TASKS if t in summary["tasks"]]
    missing = [t for t in ENGLISH_TASKS if t not in summary["tasks"]]

    def fmt(x: float | None) -> str:
        return "–" if x is None else f"{x:.2f}"

    head = "| Model | " + " | ".join(cols) + " | Avg. |"
    lines = [f"# English medical benchmarks: `{summary['model']}` ({summary['mode']})", "", head,
             "|" + "---|" * (len(cols) + 2)]
    lines.append("| **this run** | " + " | ".join(fmt(summary["tasks"][c]) for c in cols)
                 + f" | **{fmt(summary['average'])}** |")
    for name, ref in ENGLISH_ACCURACY.items():
        lines.append(f"| {name}, published | " + " | ".join(fmt(ref.get(c)) for c in cols)
                     + f" | {fmt(ref.get('Avg.'))} |")
    lines += ["", "Items per task: " + ", ".join(f"{t} {summary['n'][t]}" for t in cols) + "."]
    if missing:
        lines.append(f"Not in this suite build: {', '.join(missing)} (their sources were not found); "
                     "the published averages cover all nine columns.")
    lines += ["", "Published rows: Qiu et al., Nature Communications 2024, Table 3 (accuracy %)."]
    return "\n".join(lines) + "\n"
