"""Suites rebuilt from the real sources (../shared/data/benchmarks), and runs over them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmedkit.bench.loader import load_benchmark
from mmedkit.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def mmedbench_open(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("suite") / "mmedbench-open"
    res = runner.invoke(app, ["bench", "build", "mmedbench-open", "--sources", str(shared_data / "benchmarks"),
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_mmedbench_open_reproduces_known_split_sizes(mmedbench_open: Path) -> None:
    manifest = json.loads((mmedbench_open / "suite.json").read_text(encoding="utf-8"))
    counts = manifest["counts"]
    assert counts["fr"] == {"train": 2171, "test": 622}
    assert counts["ru"] == {"train": 1052, "test": 256}
    assert counts["es"] == {"train": 2657, "test": 2742}
    assert counts["en"] == {"test": 1273} and counts["zh"] == {"test": 3426}
    assert counts["ja"]["test"] == 199 and counts["ja"]["train"] > 1000
    differs = " ".join(manifest["differences_from_mmedbench"])
    assert "en:" in differs and "zh:" in differs and "ja:" in differs
    assert "fr:" not in differs and "ru:" not in differs and "es:" not in differs
    fr = load_benchmark(mmedbench_open, split="test", langs="fr")
    assert all(it.multi_answer for it in fr) and sum(len(it.answer) > 1 for it in fr) > 100


def test_round_trip_run_on_every_language(mmedbench_open: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["bench", "run", "--model", str(tiny_model_dir), "--data", str(mmedbench_open),
                              "--limit", "4", "--out", str(tmp_path / "run"), "--no-progress"])
    assert res.exit_code == 0, res.output
    results = json.loads((tmp_path / "run" / "results.json").read_text(encoding="utf-8"))
    assert {k: v["n"] for k, v in results["metrics"]["per_language"].items()} == {
        c: 4 for c in ("en", "zh", "ja", "fr", "ru", "es")}


def test_english_medical_suite_build_and_run(shared_data: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "english"
    res = runner.invoke(app, ["bench", "build", "english-medical", "--sources", str(shared_data / "benchmarks"),
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    counts = json.loads((out / "suite.json").read_text(encoding="utf-8"))["counts"]
    assert counts["MedQA"] == {"test": 1273} and counts["PubMedQA"] == {"test": 500}
    assert sum(counts[t]["test"] for t in counts if t.startswith("MMLU_")) == 1089
    assert "MedMCQA" not in counts and "MedMCQA" in res.output  # no MedMCQA source here: reported missing
    res = runner.invoke(app, ["bench", "run", "--suite", "english-medical", "--data", str(out), "--model",
                              str(tiny_model_dir), "--limit", "3", "--out", str(tmp_path / "run"), "--no-progress"])
    assert res.exit_code == 0, res.output
    summary = (tmp_path / "run" / "suite_summary.md").read_text(encoding="utf-8")
    assert "| Model | MedQA | PubMedQA | MMLU_CK | MMLU_MG | MMLU_AN | MMLU_PM | MMLU_CB | MMLU_CM | Avg. |" in summary
    assert "MMed-Llama 3 (8B), published" in summary and "Not in this suite build: MedMCQA" in summary


def test_bench_list_shows_sources_and_suites() -> None:
    res = runner.invoke(app, ["bench", "list"])
    assert res.exit_code == 0, res.output
    for name in ("medqa-usmle", "medqa-mcmle", "igakuqa", "frenchmedmcqa", "rumeddanet", "headqa", "pubmedqa",
                 "mmlu", "medmcqa", "mmedbench-open", "english-medical"):
        assert name in res.output
