"""results.json timing reports the tokens the hf backend ran and the tokens/s of the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmedkit.bench.engine import RunConfig, run_benchmark
from mmedkit.models.hf import HFModel


@pytest.mark.parametrize("mode", ["loglikelihood", "generate"])
def test_timing_reports_tokens_per_second(tmp_path: Path, tiny_model_dir: Path, mode: str) -> None:
    model = HFModel(str(tiny_model_dir), batch_size=4)
    cfg = RunConfig(model=str(tiny_model_dir), langs="en,fr", limit=3, mode=mode, max_new_tokens=4)
    timing = run_benchmark(cfg, tmp_path, model=model, show_progress=False)["timing"]
    assert timing["tokens_computed"] == model.tokens_computed > 0
    assert timing["tokens_per_s"] == pytest.approx(timing["tokens_computed"] / timing["eval_s"], rel=0.05)
    again = run_benchmark(cfg, tmp_path, model=model, show_progress=False)["timing"]  # all from the cache
    assert again["tokens_computed"] is None and again["tokens_per_s"] is None
