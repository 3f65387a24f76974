"""Rationale metrics of whole runs: a generate run of the tiny model, a reference run, a wrong-item run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tiny_bert import build_tiny_bert
from typer.testing import CliRunner

from mmedkit.bench.cli import app
from mmedkit.bench.engine import RunConfig, run_benchmark
from mmedkit.bench.items import DataError
from mmedkit.bench.loader import load_benchmark
from mmedkit.bench.prompts import target
from mmedkit.bench.rationale import RationaleConfig, score_run

LIMIT = 3  # items per language


def derive_run(src: Path, dst: Path, name: str, outputs: dict[str, str]) -> Path:
    """A copy of run ``src`` whose samples carry ``outputs`` (as another model would have written them)."""
    dst.mkdir(parents=True, exist_ok=True)
    results = json.loads((src / "results.json").read_text(encoding="utf-8"))
    results["model"] = {"backend": "hf", "model": name}
    (dst / "results.json").write_text(json.dumps(results, ensure_ascii=False), encoding="utf-8")
    samples = [json.loads(line) for line in (src / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    for s in samples:
        s["output"] = outputs[s["id"]]
    (dst / "samples.jsonl").write_text("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples),
                                       encoding="utf-8")
    return dst


def make_runs(root: Path, model_dir: Path) -> dict[str, Path]:
    """``tiny``: the tiny model run with the with-rationale prompt; ``reference``: the reference rationales;
    ``shuffled``: each item gets the reference rationale of another item of its language."""
    tiny = root / "tiny"
    cfg = RunConfig(model=str(model_dir), mode="generate", rationale=True, limit=LIMIT, max_new_tokens=48,
                    model_options={"device": "cpu", "dtype": "float32"})
    run_benchmark(cfg, tiny, show_progress=False)
    items = [it for it in load_benchmark("demo", limit=LIMIT)]
    by_lang: dict[str, list] = {}
    for it in items:
        by_lang.setdefault(it.language, []).append(it)
    shuffled = {}
    for group in by_lang.values():
        for k, it in enumerate(group):
            other = group[(k + 1) % len(group)]
            shuffled[it.id] = target(other, True)
    return {"tiny": tiny,
            "reference": derive_run(tiny, root / "reference", "reference rationales",
                                    {it.id: target(it, True) for it in items}),
            "shuffled": derive_run(tiny, root / "shuffled", "rationales of other items", shuffled)}


def session_runs(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> dict[str, Path]:
    """The runs of :func:`make_runs`, built once per test session and copied for each module."""
    base = tmp_path_factory.getbasetemp() / "rationale-runs-base"
    if not (base / "done").is_file():
        shutil.rmtree(base, ignore_errors=True)
        make_runs(base, model_dir)
        (base / "done").write_text("ok", encoding="utf-8")
    copy = tmp_path_factory.mktemp("rationale-runs")
    return {name: Path(shutil.copytree(base / name, copy / name)) for name in ("tiny", "reference", "shuffled")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict[str, Path]:
    return session_runs(tmp_path_factory, tiny_model_dir)


def test_reference_run_scores_100_and_wrong_items_score_lower(runs: dict[str, Path]) -> None:
    ref = score_run(runs["reference"], RationaleConfig(human_checked_only=False), items=load_benchmark("demo"))
    checked = ref["counts"]["human_checked"]
    assert ref["counts"] == {"samples": 6 * LIMIT, "no_reference": 0, "not_human_checked": 0, "scored": 6 * LIMIT,
                             "human_checked": checked}
    assert list(ref["per_language"]) == ["en", "zh", "ja", "fr", "ru", "es"]
    for key in ("bleu-1", "bleu-4", "rouge-1", "rouge-2", "rouge-L"):
        assert ref["average"][key] == 100.0
    shuffled = score_run(runs["shuffled"])
    for code, row in shuffled["per_language"].items():
        assert row["rouge-1"] < 100 and row["bleu-4"] <= row["bleu-1"], code
    # other items' rationales share some words (not in every language: the Russian ones share none)
    assert sum(row["rouge-1"] > 0 for row in shuffled["per_language"].values()) >= 4
    assert 0 < shuffled["average"]["bleu-1"] < 30
    assert shuffled["segmenters"]["zh"].startswith("jieba") and shuffled["segmenters"]["ja"].startswith("janome")


def test_human_checked_only_by_default_when_the_data_marks_them(runs: dict[str, Path]) -> None:
    summary = score_run(runs["reference"], items=load_benchmark("demo"))  # as the engine calls it
    assert summary["config"]["human_checked_only"] and summary["config"]["human_checked_only_default"]
    assert summary["counts"]["scored"] == summary["counts"]["human_checked"] > 0
    assert summary["counts"]["not_human_checked"] == 6 * LIMIT - summary["counts"]["human_checked"]
    assert "study script 'BLEU-1'" in summary["labels"].get("study_bleu", "study script 'BLEU-1'")
    assert "42-49" in summary["definitions"]["readings"]


def test_writes_files_and_updates_results(runs: dict[str, Path]) -> None:
    summary = score_run(runs["tiny"], RationaleConfig(human_checked_only=True))
    d = runs["tiny"]
    samples = [json.loads(x) for x in (d / "rationale_samples.jsonl").read_text(encoding="utf-8").splitlines()]
    items = {it.id: it for it in load_benchmark("demo", limit=LIMIT)}
    assert len(samples) == summary["counts"]["scored"] == sum(bool(it.human_checked) for it in items.values())
    assert summary["counts"]["not_human_checked"] == 6 * LIMIT - summary["counts"]["scored"]
    assert all(items[s["id"]].human_checked for s in samples)
    results = json.loads((d / "results.json").read_text(encoding="utf-8"))
    assert results["rationale"]["average"]["n"] == summary["counts"]["scored"]
    assert results["metrics"]["overall"]["n"] == 6 * LIMIT  # the engine's metrics are kept
    md = (d / "rationale.md").read_text(encoding="utf-8")
    assert "| Japanese |" in md and "BLEU-4" in md and "ROUGE-L" in md and "human-checked only" in md


def test_bertscore_in_a_run_and_the_cli(runs: dict[str, Path], tmp_path: Path) -> None:
    bert = build_tiny_bert(tmp_path / "bert")
    result = CliRunner().invoke(app, ["rationale", str(runs["reference"]), str(runs["shuffled"]),
                                      "--bertscore-model", str(bert), "--rescale", "auto", "--device", "cpu",
                                      "--no-human-checked-only"])  # every reference: two per language at least
    assert result.exit_code == 0, result.output
    ref = json.loads((runs["reference"] / "rationale.json").read_text(encoding="utf-8"))
    shuf = json.loads((runs["shuffled"] / "rationale.json").read_text(encoding="utf-8"))
    assert ref["average"]["bertscore-F1"] == pytest.approx(100.0, abs=0.01)
    assert shuf["average"]["bertscore-F1"] < ref["average"]["bertscore-F1"]
    assert set(ref["notes"]["bertscore"]["baselines"]) == {"en", "zh", "ja", "fr", "ru", "es"}
    assert "BERTScore F1" in result.output


def test_errors_name_the_file(runs: dict[str, Path], tmp_path: Path) -> None:
    ll = tmp_path / "ll"
    shutil.copytree(runs["tiny"], ll)
    results = json.loads((ll / "results.json").read_text(encoding="utf-8"))
    results["config"]["mode"] = "loglikelihood"
    (ll / "results.json").write_text(json.dumps(results), encoding="utf-8")
    with pytest.raises(DataError, match=r"results.json.*loglikelihood.*--mode generate"):
        score_run(ll)
    bad = tmp_path / "bad"
    shutil.copytree(runs["tiny"], bad)
    with (bad / "samples.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"id": "no-such-item", "language": "en"}) + "\n")
    with pytest.raises(DataError, match=rf"samples.jsonl:{6 * LIMIT + 1}: item 'no-such-item'"):
        score_run(bad)
    result = CliRunner().invoke(app, ["rationale", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "not a run folder" in result.output
