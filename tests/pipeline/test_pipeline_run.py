"""Running experiments: skip what finished, rerun exactly what changed, resume after a kill, lock, report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from typer.testing import CliRunner

from mmedkit.pipeline.cli import app
from mmedkit.pipeline.experiment import load_experiment
from mmedkit.pipeline.runner import LOCK_FILE, Locked, folder_lock, read_state, run_plan

ALL = ["corpus", "pretrain", "perplexity", "sft-lora", "pretrain-sft-lora", "eval-base", "eval-sft-lora",
       "eval-pretrain", "eval-pretrain-sft-lora", "report"]


def _run(path: Path, out: Path, *sets: str, **kw: object) -> dict[str, list[str]]:
    exp, raw = load_experiment(path, sets)
    return run_plan(exp, raw, out, progress=False, **kw)


def _samples(out: Path, arm: str) -> list[dict]:
    return [json.loads(x) for x in (out / f"eval-{arm}" / "samples.jsonl").read_text().splitlines()]


def test_lock_names_the_running_process_and_a_dead_holder_is_replaced(tmp_path: Path) -> None:
    with folder_lock(tmp_path):
        with pytest.raises(Locked, match=rf"is in use by another run \(pid {os.getpid()} on "):
            with folder_lock(tmp_path):
                pass
    assert not (tmp_path / LOCK_FILE).exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    holder = json.loads(json.dumps({"pid": int(dead.stdout), "host": os.uname().nodename, "started": "earlier"}))
    (tmp_path / LOCK_FILE).write_text(json.dumps(holder))
    with folder_lock(tmp_path):  # its process is gone: the lock is taken over
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()


@pytest.mark.slow
def test_a_change_reruns_exactly_the_stages_downstream(tmp_path: Path, write_experiment) -> None:
    path, out = write_experiment(), tmp_path / "run"
    assert _run(path, out) == {"ran": ALL, "skipped": []}
    assert _run(path, out) == {"ran": [], "skipped": ALL}
    base_before = _samples(out, "base")
    changed = _run(path, out, "sft.set.train.lr=0.005")
    assert changed["ran"] == ["sft-lora", "pretrain-sft-lora", "eval-sft-lora", "eval-pretrain-sft-lora", "report"]
    assert _samples(out, "base") == base_before
    assert _run(path, out, "sft.set.train.lr=0.005", "evaluate.limit=2")["ran"] == [
        "eval-base", "eval-sft-lora", "eval-pretrain", "eval-pretrain-sft-lora", "report"]
    assert {s["language"] for s in _samples(out, "base")} == {"en", "fr"} and len(_samples(out, "base")) == 4
    forced = _run(path, out, "sft.set.train.lr=0.005", "evaluate.limit=2", only="perplexity")
    assert forced == {"ran": ["perplexity"], "skipped": [n for n in ALL if n != "perplexity"]}

    report = (out / "report" / "report.md").read_text(encoding="utf-8")
    for title in ("Accuracy per language", "Difference against base", "Held-out medical perplexity",
                  "Corpus", "(training.png)", "Stages"):
        assert title in report, title
    comparison = json.loads((out / "report" / "comparison.json").read_text())
    assert set(comparison["diff_vs_base"]) == {"sft-lora", "pretrain", "pretrain-sft-lora"}
    assert (out / "report" / "report.html").is_file() and (out / "report" / "accuracy.png").is_file()
    state = read_state(out, "pretrain")
    assert state["status"] == "done" and state["summary"]["useful_tokens"] > 0
    assert not (out / "pretrain" / "checkpoints").exists()  # finished: checkpoints pruned

    result = CliRunner().invoke(app, ["status", str(out)], terminal_width=200)
    assert result.exit_code == 0 and "pretrain-sft-lora" in result.output and "not running" in result.output


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"the run ended before {path} appeared:\n{proc.stdout.read()}"
        assert time.monotonic() < end, f"{path} did not appear in {timeout} s"
        time.sleep(0.02)


def _assert_close(got: object, want: object, rel: float, where: str = "") -> None:
    """``got`` equals ``want`` in structure and text, numbers within ``rel`` (nested dicts and lists)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), where
        for key in want:
            _assert_close(got[key], want[key], rel, f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _assert_close(g, w, rel, f"{where}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=rel), where
    else:
        assert got == want, where


@pytest.mark.slow
def test_killed_during_pretraining_then_rerun_gives_the_same_results(tmp_path: Path, write_experiment) -> None:
    """An uninterrupted run, then the same run from pretraining again killed (SIGKILL) after its second
    checkpoint and rerun: the same held-out loss, perplexities and evaluations."""
    path, out = write_experiment(), tmp_path / "run"
    _run(path, out)
    whole = {
        "summary": json.loads((out / "pretrain" / "train_summary.json").read_text()),
        "weights": load_file(str(out / "pretrain" / "model.safetensors")),
        "perplexity": read_state(out, "perplexity")["summary"],
        "samples": {arm: _samples(out, arm) for arm in ("pretrain", "pretrain-sft-lora")},
    }
    code = "import sys; from mmedkit.pipeline.cli import app; app(sys.argv[1:])"
    proc = subprocess.Popen([sys.executable, "-c", code, "run", str(path), "--out", str(out), "--from", "pretrain",
                             "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    try:
        _wait_for(out / "pretrain" / "checkpoints" / "step-00000002" / "trainer_state.json", proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    state = read_state(out, "pretrain")
    assert state["status"] == "running" and not (out / "pretrain" / "train_summary.json").exists()
    assert (out / LOCK_FILE).exists()  # left behind by the killed run, taken over by the next one

    again = _run(path, out)
    assert again["ran"][0] == "pretrain" and "corpus" in again["skipped"]
    assert read_state(out, "pretrain")["sessions"] == 2  # resumed, not restarted
    resumed = json.loads((out / "pretrain" / "train_summary.json").read_text())
    assert resumed["steps_this_session"] < resumed["steps"]
    # The killed run may compute with another CPU thread count than this process (the trainer says so when it
    # resumes): then the result matches to rounding (bit for bit: tests/train/test_train_resume_exact.py)
    _assert_close(resumed["held_out_after"], whole["summary"]["held_out_after"], rel=1e-5)
    _assert_close(resumed["held_out_before"], whole["summary"]["held_out_before"], rel=1e-5)
    weights = load_file(str(out / "pretrain" / "model.safetensors"))
    for key, value in whole["weights"].items():
        assert torch.allclose(value, weights[key], rtol=1e-5, atol=1e-6), key
    _assert_close(read_state(out, "perplexity")["summary"], whole["perplexity"], rel=1e-5)
    for arm, samples in whole["samples"].items():
        now = _samples(out, arm)
        assert [(s["id"], s["extracted"], s["correct"]) for s in now] == \
            [(s["id"], s["extracted"], s["correct"]) for s in samples]
        for a, b in zip(now, samples, strict=True):
            assert a["scores"] == pytest.approx(b["scores"], abs=1e-4)
    plan = yaml.safe_load((out / "experiment.yaml").read_text())
    assert plan["name"] == "tiny"


@pytest.mark.slow
def test_generate_mode_reports_invalid_answers_and_rationale_metrics(tmp_path: Path, write_experiment) -> None:
    path = write_experiment(arms=["base", "sft"], corpus=None, pretrain=None,
                            evaluate={"mode": "generate", "rationale": True, "limit": 2, "batch_size": 4})
    out = tmp_path / "run"
    assert _run(path, out)["ran"] == ["sft-lora", "eval-base", "eval-sft-lora", "report"]
    report = (out / "report" / "report.md").read_text(encoding="utf-8")
    assert "## Invalid answers" in report and "## Rationale metrics (mean over languages)" in report
    assert "Held-out medical perplexity" not in report  # no pretraining arm, no perplexity stage
    assert (out / "eval-sft-lora" / "rationale.json").is_file()
