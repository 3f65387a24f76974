"""`mmed bench export --format mmedbench-leaderboard`: the files and columns of the study's SubmissionTutorial.md."""

from __future__ import annotations

import csv
from pathlib import Path

from test_study_protocol import Scripted
from typer.testing import CliRunner

from mmedkit.bench.cli import app
from mmedkit.bench.engine import RunConfig, run_benchmark
from mmedkit.bench.loader import load_benchmark
from mmedkit.bench.prompts import target
from mmedkit.bench.rationale import RationaleConfig, score_run

LANGS = ["English", "Chinese", "Japanese", "French", "Russian", "Spanish"]


class Explains(Scripted):
    """Writes each item's reference rationale and answer, as the study's fine-tuned models do."""

    def generate(self, requests, *, progress=None):
        return [target(self._item(r.prompt), True) for r in requests]


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def test_export_writes_the_tutorial_files_and_columns(tmp_path: Path) -> None:
    items = load_benchmark("demo")
    mc, rat = tmp_path / "mc", tmp_path / "rat"
    run_benchmark(RunConfig(model="s", mode="generate", protocol="study"), mc, model=Scripted(items),
                  show_progress=False)
    run_benchmark(RunConfig(model="s", mode="generate", rationale=True), rat, model=Explains(items),
                  show_progress=False)
    score_run(rat, RationaleConfig(study=False))
    result = CliRunner().invoke(app, ["export", str(mc), str(rat), "--format", "mmedbench-leaderboard",
                                      "--out", str(tmp_path / "lb")])
    assert result.exit_code == 0, result.output
    lb = tmp_path / "lb"
    assert sorted(p.name for p in lb.iterdir()) == ["accuracy_metric.csv", "multi_choice_results.csv",
                                                    "rationale_results.csv", "rationale_similarity_metric.csv"]
    choices = _rows(lb / "multi_choice_results.csv")
    assert choices[0] == ["Language", "ModelInput", "ModelOutput", "GT_Answer"] and len(choices) == 61
    assert {r[0] for r in choices[1:]} == set(LANGS) and all(r[1].endswith("### Response:") for r in choices[1:])
    assert any(r[3] == "A,C,E" or "," in r[3] for r in choices[1:])
    acc = _rows(lb / "accuracy_metric.csv")
    assert acc[0] == LANGS and len(acc) == 2 and all(float(x) >= 0 for x in acc[1])
    rationale = _rows(lb / "rationale_results.csv")
    checked = [it for it in items if it.rationale and it.human_checked]
    assert rationale[0] == ["Language", "ModelInput", "ModelOutput", "GT_Answer"]
    assert len(rationale) == 1 + len(checked)
    assert {r[3] for r in rationale[1:]} == {it.rationale for it in checked}
    sim = _rows(lb / "rationale_similarity_metric.csv")
    assert sim[0] == ["Metric", *LANGS]
    assert [r[0] for r in sim[1:]] == ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-1", "ROUGE-2", "ROUGE-L"]
    assert all(float(x) == 100.0 for r in sim[1:] for x in r[1:])


def test_export_needs_scored_rationales(tmp_path: Path) -> None:
    items = load_benchmark("demo", langs="en")
    run_benchmark(RunConfig(model="s", mode="generate", rationale=True, langs="en"), tmp_path / "r",
                  model=Explains(items), show_progress=False)
    (tmp_path / "r" / "rationale.json").unlink()  # the engine scores rationale runs as they finish
    result = CliRunner().invoke(app, ["export", str(tmp_path / "r")])
    assert result.exit_code != 0 and "mmed bench rationale" in result.output
