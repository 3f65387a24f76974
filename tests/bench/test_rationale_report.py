"""The multi-run HTML + Markdown report with PNG/SVG charts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_rationale_run import session_runs
from typer.testing import CliRunner

from mmedkit.bench.cli import app
from mmedkit.bench.rationale import score_run
from mmedkit.bench.rationale.judge import JudgeConfig, judge_runs
from mmedkit.models.hf import HFModel

EVIL = "<script>alert('x')</script> | model"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict[str, Path]:
    got = session_runs(tmp_path_factory, tiny_model_dir)
    for d in got.values():
        score_run(d)
    results = json.loads((got["shuffled"] / "results.json").read_text(encoding="utf-8"))
    results["model"]["model"] = EVIL  # model names come from users and servers: they must be escaped
    (got["shuffled"] / "results.json").write_text(json.dumps(results), encoding="utf-8")
    return got


def test_report_html_markdown_and_charts(runs: dict[str, Path], tiny_model_dir: Path, tmp_path: Path) -> None:
    judge_dir = tmp_path / "judge"
    judge_runs([runs["tiny"], runs["reference"], runs["shuffled"]], judge_dir,
               JudgeConfig(judge_model="tiny", backend="hf", verdict="loglikelihood", limit=1, bootstrap=50),
               model=HFModel(str(tiny_model_dir), device="cpu", dtype="float32"))
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", str(runs["tiny"]), str(runs["reference"]), str(runs["shuffled"]),
                                      "--out", str(out), "--judge", str(judge_dir), "--title", "Demo <comparison>"])
    assert result.exit_code == 0, result.output
    for name in ("accuracy", "rationale", "judge_1"):
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / f"{name}.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")
    html = (out / "report.html").read_text(encoding="utf-8")
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;script&gt;" in html and "Demo &lt;comparison&gt;" in html
    assert "\\| model" in md  # a pipe in a name does not break the Markdown table
    for text in ("Accuracy per language", "95% CI", "GPT-4, published", "Rationale metrics", "BLEU-1", "ROUGE-L",
                 "Judge ranking by tiny", "Swap consistency", "Win rate", "Accuracy per medical field",
                 "cardiology", "Llama 3 (8B), published", "not the mean of its per-language figures (75.31)",
                 "Published results of the study", "MMedBench accuracy, zero-shot", "MMedLM 2 (1.8B)"):
        assert text in md and text in html, text
    assert 'src="accuracy.svg"' in html and "](accuracy.png)" in md
    ref_row = next(line for line in md.splitlines() if line.startswith("| reference |") and "100.00" in line)
    assert ref_row.count("100.00") >= 7  # the reference run's own rationales score 100 on every n-gram metric


def test_report_errors(runs: dict[str, Path], tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", str(runs["tiny"]), "--out", str(tmp_path / "r"),
                                      "--judge", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "no judge.json" in result.output
