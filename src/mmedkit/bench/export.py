"""``mmed bench export --format mmedbench-leaderboard``: the files the study's SubmissionTutorial.md asks for.

From a multiple-choice run (without ``--rationale``):

* ``multi_choice_results.csv``: Language, ModelInput, ModelOutput, GT_Answer ("A" or "A,B,C");
* ``accuracy_metric.csv``: one column per language (the six, in the study's order), one row of accuracy (%).

From a rationale run (``--mode generate --rationale``, scored by ``mmed bench rationale``):

* ``rationale_results.csv``: Language, ModelInput, ModelOutput, GT_Answer (the reference rationale), human-checked
  cases only;
* ``rationale_similarity_metric.csv``: first column the metric (BLEU-1..BLEU-4, ROUGE-1, ROUGE-2, ROUGE-L), then
  one column per language.

A log-likelihood run has no generated text: its ModelOutput is the chosen answer in the study's form
(``###Answer: OPTION B IS CORRECT.``), and a note says so.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmedkit.bench.prompts import answer_text
from mmedkit.bench.rationale.runs import RESULTS, Run, load_run, run_items
from mmedkit.bench.rationale.scoring import RATIONALE_JSON
from mmedkit.errors import DataError
from mmedkit.languages import LANGUAGES
from mmedkit.utils import atomic_write_text

FORMATS = ("mmedbench-leaderboard",)
RESULT_COLUMNS = ("Language", "ModelInput", "ModelOutput", "GT_Answer")
RATIONALE_METRICS = {"BLEU-1": "bleu-1", "BLEU-2": "bleu-2", "BLEU-3": "bleu-3", "BLEU-4": "bleu-4",
                     "ROUGE-1": "rouge-1", "ROUGE-2": "rouge-2", "ROUGE-L": "rouge-L"}
LANGUAGE_COLUMNS = tuple(lang.name for lang in LANGUAGES.values())


def _csv(rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _model_input(sample: dict[str, Any]) -> str:
    prompt = sample.get("prompt", "")
    return prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False)


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _multi_choice(run: Run, out: Path, notes: list[str]) -> list[Path]:
    generated = run.generated
    if not generated:
        notes.append(f"{run.path}: log-likelihood run; ModelOutput is the chosen answer in the study's form")
    rows: list[Sequence[Any]] = [RESULT_COLUMNS]
    for s in run.samples:
        output = s.get("output", "")
        if not generated:
            output = answer_text(frozenset(s["extracted"].split(","))) if s.get("extracted") else ""
        rows.append((LANGUAGES[s["language"]].name, _model_input(s), output, s["gold"]))
    per = run.results["metrics"]["per_language"]
    acc = [LANGUAGE_COLUMNS, [_cell((per.get(code) or {}).get("accuracy")) for code in LANGUAGES]]
    atomic_write_text(out / "multi_choice_results.csv", _csv(rows))
    atomic_write_text(out / "accuracy_metric.csv", _csv(acc))
    return [out / "multi_choice_results.csv", out / "accuracy_metric.csv"]


def _rationale(run: Run, out: Path, notes: list[str]) -> list[Path]:
    path = run.path / RATIONALE_JSON
    if not path.is_file():
        raise DataError(f"no {RATIONALE_JSON}: score the rationales first (mmed bench rationale {run.path})",
                        path=str(run.path))
    summary = json.loads(path.read_text(encoding="utf-8"))
    if not summary["config"].get("human_checked_only"):
        notes.append(f"{path}: scored on every reference, not only human-checked ones (the data has no marks "
                     "or --no-human-checked-only was given); the leaderboard uses human-checked cases only")
    items = run_items(run)
    rows: list[Sequence[Any]] = [RESULT_COLUMNS]
    for s in run.samples:
        it = items[s["id"]]
        if it.rationale and (it.human_checked or not summary["config"].get("human_checked_only")):
            rows.append((LANGUAGES[s["language"]].name, _model_input(s), s.get("output", ""), it.rationale))
    per = summary["per_language"]
    metrics = [("Metric", *LANGUAGE_COLUMNS)]
    metrics += [(label, *(_cell((per.get(code) or {}).get(key)) for code in LANGUAGES))
                for label, key in RATIONALE_METRICS.items()]
    atomic_write_text(out / "rationale_results.csv", _csv(rows))
    atomic_write_text(out / "rationale_similarity_metric.csv", _csv(metrics))
    return [out / "rationale_results.csv", out / "rationale_similarity_metric.csv"]


def export_leaderboard(run_dirs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str]) -> tuple[list[Path],
                                                                                                         list[str]]:
    """Write the leaderboard files of ``run_dirs`` (a multiple-choice run, a rationale run, or one of each) to
    ``out``; returns the files written and notes on how they differ from a submission."""
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    runs = [load_run(d) for d in run_dirs]
    kinds = [bool(r.config.get("rationale")) and r.generated for r in runs]
    if len(kinds) != len(set(kinds)):
        raise DataError("give at most one multiple-choice run and one rationale run", path=str(runs[0].path / RESULTS))
    notes: list[str] = []
    written: list[Path] = []
    for run, rationale in zip(runs, kinds, strict=True):
        written += (_rationale if rationale else _multi_choice)(run, target, notes)
    return written, notes
