"""The loader and the engine on real benchmark files from ../shared/data (skipped without it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmedkit.bench.loader import load_file
from mmedkit.languages import get_language

MEDQA = "benchmarks/medqa_usmle_4options/data/medqa/test.jsonl"


def test_medqa_usmle_original_records_load_as_mmedbench_english(shared_data: Path) -> None:
    items = load_file(shared_data / MEDQA, get_language("en"), "test")
    assert len(items) == 1273  # the MMedBench English test split
    assert all(list(it.options) == ["A", "B", "C", "D"] for it in items)
    assert all(len(it.answer) == 1 and not it.multi_answer for it in items)
    assert len({it.id for it in items}) == 1273
    letters = {letter: sum(letter in it.answer for it in items) for letter in "ABCD"}
    assert min(letters.values()) > 200  # answers spread over the letters


def test_engine_on_real_items(shared_data: Path, tmp_path: Path, tiny_model, tiny_model_dir) -> None:
    from mmedkit.bench.engine import RunConfig, run_benchmark
    from mmedkit.bench.loader import write_benchmark

    items = load_file(shared_data / MEDQA, get_language("en"), "test")[:40]
    write_benchmark(items, tmp_path / "data")
    res = run_benchmark(RunConfig(model=str(tiny_model_dir), data=str(tmp_path / "data")), tmp_path / "out",
                        model=tiny_model, show_progress=False)
    assert res["metrics"]["per_language"]["en"]["n"] == 40
    assert res["data"]["skipped"] and all("not found" in s for s in res["data"]["skipped"])
    with pytest.raises(Exception, match="missing file for Chinese"):
        run_benchmark(RunConfig(model=str(tiny_model_dir), data=str(tmp_path / "data"), langs="en,zh"),
                      tmp_path / "out2", model=tiny_model, show_progress=False)
