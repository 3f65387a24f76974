"""End-to-end evaluation runs: outputs, metrics, resume after interruption."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmedkit.bench.engine import RunConfig, run_benchmark
from mmedkit.models.base import LanguageModel


class InterruptAfter(LanguageModel):
    """Wraps a real model and raises KeyboardInterrupt on the n-th call (like Ctrl-C mid-run)."""

    backend_name = "hf"

    def __init__(self, inner: LanguageModel, calls: int) -> None:
        self.inner, self.calls = inner, calls

    def _tick(self) -> None:
        self.calls -= 1
        if self.calls < 0:
            raise KeyboardInterrupt

    def generate(self, requests, *, progress=None):
        self._tick()
        return self.inner.generate(requests, progress=progress)

    def loglikelihood(self, requests, *, progress=None):
        self._tick()
        return self.inner.loglikelihood(requests, progress=progress)

    def info(self):
        return self.inner.info()


def _read(out: Path) -> tuple[list[dict], dict]:
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    return samples, json.loads((out / "results.json").read_text(encoding="utf-8"))["metrics"]


@pytest.mark.parametrize("mode", ["loglikelihood", "generate"])
def test_run_writes_results_and_resume_equals_uninterrupted(tmp_path: Path, tiny_model, tiny_model_dir, mode) -> None:
    cfg = RunConfig(model=str(tiny_model_dir), mode=mode, chunk_size=7, max_new_tokens=12)
    full = run_benchmark(cfg, tmp_path / "full", model=tiny_model, show_progress=False)
    assert set(full["metrics"]["per_language"]) == {"en", "zh", "ja", "fr", "ru", "es"}
    assert full["metrics"]["overall"]["n"] == 60
    assert (tmp_path / "full" / "summary.md").read_text(encoding="utf-8").count("| ") > 10
    assert (tmp_path / "full" / "accuracy.png").stat().st_size > 10_000
    samples, metrics = _read(tmp_path / "full")
    assert len(samples) == 60 and all(s["gold"] for s in samples)
    for s in samples:
        assert s["correct"] == (s["extracted"] == s["gold"])
    if mode == "loglikelihood":
        assert not any(s["invalid"] for s in samples)
        fr = next(s for s in samples if s["language"] == "fr")
        assert len(fr["scores"]) == 31 and fr["extracted"] == max(fr["scores"], key=fr["scores"].get)
    langs = metrics["per_language"]
    assert metrics["overall"]["macro_accuracy"] == pytest.approx(
        sum(v["accuracy"] for v in langs.values()) / 6, abs=0.01)

    with pytest.raises(KeyboardInterrupt):
        run_benchmark(cfg, tmp_path / "resumed", model=InterruptAfter(tiny_model, calls=3), show_progress=False)
    cache = next((tmp_path / "resumed" / ".cache").glob("*.jsonl"))
    assert len(cache.read_text(encoding="utf-8").splitlines()) == 21  # three chunks of 7 survived
    again = run_benchmark(cfg, tmp_path / "resumed", model=tiny_model, show_progress=False)
    assert again["timing"]["items_from_cache"] == 21 and again["timing"]["items_this_run"] == 39
    assert _read(tmp_path / "resumed") == _read(tmp_path / "full")


def test_changed_settings_do_not_reuse_cache(tmp_path: Path, tiny_model, tiny_model_dir) -> None:
    base = RunConfig(model=str(tiny_model_dir), langs="en", limit=4)
    run_benchmark(base, tmp_path, model=tiny_model, show_progress=False)
    other = RunConfig(model=str(tiny_model_dir), langs="en", limit=4, fewshot=1)
    res = run_benchmark(other, tmp_path, model=tiny_model, show_progress=False)
    assert res["timing"]["items_from_cache"] == 0
    assert base.fingerprint() != other.fingerprint()
    assert base.fingerprint() == RunConfig(model=str(tiny_model_dir), langs="en,zh", limit=9,
                                           chunk_size=3).fingerprint()


@pytest.mark.slow
def test_other_settings_keep_the_earlier_results(tmp_path: Path, tiny_model, tiny_model_dir) -> None:
    from rich.console import Console

    first = run_benchmark(RunConfig(model=str(tiny_model_dir), langs="en", limit=3), tmp_path, model=tiny_model,
                          show_progress=False)
    console = Console(record=True, width=300)
    same = run_benchmark(RunConfig(model=str(tiny_model_dir), langs="en", limit=3), tmp_path, model=tiny_model,
                         console=console, show_progress=False)
    assert same["metrics"] == first["metrics"] and "other settings" not in console.export_text()
    other = RunConfig(model=str(tiny_model_dir), langs="en", limit=3, fewshot=1)
    run_benchmark(other, tmp_path, model=tiny_model, console=console, show_progress=False)
    kept = tmp_path / f"previous-{first['fingerprint']}"
    assert f"kept in {kept}" in console.export_text().replace("\n", "")
    assert json.loads((kept / "results.json").read_text())["fingerprint"] == first["fingerprint"]
    assert (kept / "samples.jsonl").is_file()
    assert json.loads((tmp_path / "results.json").read_text())["fingerprint"] == other.fingerprint()


def test_cli_killed_with_sigint_then_resumed(tmp_path: Path, tiny_model_dir: Path) -> None:
    """A real `mmed bench run` process interrupted with SIGINT resumes to the uninterrupted result."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "mmedkit", "bench", "run", "--model", str(tiny_model_dir), "--mode", "generate",
           "--max-new-tokens", "48", "--batch-size", "2", "--no-progress"]
    subprocess.run([*cmd, "--out", str(tmp_path / "full")], check=True, env=env, capture_output=True)
    # SIGINT back to its default in the child: a suite started in the background (`make test &`) ignores it, and
    # Python then installs no KeyboardInterrupt handler
    proc = subprocess.Popen([*cmd, "--out", str(tmp_path / "cut")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    cache_dir = tmp_path / "cut" / ".cache"
    deadline = time.time() + 120
    while time.time() < deadline:
        files = list(cache_dir.glob("*.jsonl")) if cache_dir.exists() else []
        if files and files[0].stat().st_size > 0:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode != 0, "the run finished before it could be interrupted"
    assert b"rerun the same command to resume" in stderr
    assert not (tmp_path / "cut" / "results.json").exists()
    subprocess.run([*cmd, "--out", str(tmp_path / "cut")], check=True, env=env, capture_output=True)
    assert _read(tmp_path / "cut") == _read(tmp_path / "full")
