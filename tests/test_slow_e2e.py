"""Slow end-to-end checks: the embedded real model and the speed benchmark's agreement with lm-eval."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_embedded_smollm2_converts_loads_and_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gguf")
    from mmedkit.models.base import GenerationRequest
    from mmedkit.models.embedded import default_model_dir, gguf_path
    from mmedkit.models.hf import HFModel

    try:
        gguf_path()
    except Exception as exc:  # the package is installed by the Makefile; a bare pip install may lack it
        pytest.skip(str(exc))
    path = default_model_dir(tmp_path / "smol")
    assert (path / "model.safetensors").is_file() and not list(path.glob("*.gguf"))
    assert "quantization_config" not in (path / "config.json").read_text()
    model = HFModel(str(path))
    assert model.info().details["parameters"] > 100_000_000
    msgs = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    out = model.generate([GenerationRequest(msgs, max_new_tokens=12)])[0]
    assert "paris" in out.lower()
    assert default_model_dir(tmp_path / "smol") == path  # cached: no second conversion


@pytest.mark.slow
def test_benchmark_script_agrees_with_lm_eval(tmp_path: Path) -> None:
    pytest.importorskip("lm_eval")
    out = tmp_path / "bench.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_loglikelihood.py"), "--n-medqa", "20",
                    "--json", str(out)], check=True, capture_output=True, timeout=600)
    report = json.loads(out.read_text())
    assert set(report["types"]) == {"letter", "multi", "text"}
    for kind, row in report["types"].items():
        assert row["items"] > 0, kind
        assert set(row["others"]) == {"naive", "lm-eval"}, kind
        for name, run in row["others"].items():
            assert run["agreement"] == 1.0, (kind, name)
            assert run["max_abs_logprob_diff"] < 1e-4, (kind, name)
