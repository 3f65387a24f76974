"""The corpus pipeline on several processes: local executor vs Ray, and a run killed with SIGKILL then resumed.

Both build the whole pipeline (language ID, medical keywords, quality, exact and MinHash dedup) on real
multilingual documents from ../shared/data/corpus_dev, sharded into several input files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("datatrove")

from test_corpus_pipeline import corpus_dev, read_outputs, write_jsonl  # noqa: E402

from mmedkit.corpus.config import parse_config  # noqa: E402
from mmedkit.corpus.pipeline import run_pipeline  # noqa: E402
from mmedkit.languages import CODES  # noqa: E402

STEPS = {"language_id": {}, "medical_keywords": {}, "quality": {}, "exact_dedup": {}, "near_dedup": {}}


def shard_input(shared: Path, folder: Path, shards: int, per_language: int | None) -> int:
    """corpus_dev documents (plus exact copies) dealt round-robin into ``shards`` JSONL files; returns the count."""
    rows = []
    for code in CODES:
        docs = corpus_dev(shared, code, limit=per_language)
        rows += docs + [{**d, "id": d["id"] + "-copy"} for d in docs if d["label"] == "medical"][:5]
    for i in range(shards):
        write_jsonl(folder / f"part-{i:02d}.jsonl", rows[i::shards])
    return len(rows)


def make_config(src: Path, out: Path, tasks: int, workers: int, executor: str = "local") -> dict:
    return {"name": "dist", "inputs": [{"path": str(src), "source": "dev"}], "steps": STEPS,
            "output": {"path": str(out), "write_removed": True},
            "executor": {"type": executor, "tasks": tasks, "workers": workers}}


def step_counts(report: dict) -> list[tuple]:
    return [(r["step"], r["in"], r["kept"], r["dropped"], sorted(r["reasons"].items())) for r in report["steps"]]


@pytest.mark.slow
def test_local_and_ray_executors_give_the_same_documents(shared_data: Path, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    src = tmp_path / "in"
    shard_input(shared_data, src, shards=4, per_language=80)
    local = run_pipeline(parse_config(make_config(src, tmp_path / "local", tasks=4, workers=2), "local"))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert ray.is_initialized()
        distributed = run_pipeline(parse_config(make_config(src, tmp_path / "ray", tasks=4, workers=2, executor="ray"),
                                                "ray"))
    finally:
        ray.shutdown()
    a, b = read_outputs(tmp_path / "local"), read_outputs(tmp_path / "ray")
    assert len(a) > 100 and a == b  # same ids, texts and metadata
    assert {d["metadata"]["language"] for d in a.values()} == set(CODES)
    assert step_counts(local) == step_counts(distributed)
    assert local["corpus"] == distributed["corpus"]
    # the second build really ran on Ray: datatrove saved a RayPipelineExecutor (only it has ray_remote_kwargs)
    saved = json.loads((tmp_path / "ray" / "_work" / "logs" / "filter" / "executor.json").read_text())
    assert "ray_remote_kwargs" in saved and "start_method" not in saved


RUNNER = """
import json, sys
from mmedkit.corpus.config import parse_config
from mmedkit.corpus.pipeline import run_pipeline

if __name__ == "__main__":
    run_pipeline(parse_config(json.load(open(sys.argv[1])), sys.argv[1]))
"""


@pytest.mark.slow
def test_killed_run_resumes_without_redoing_or_losing_documents(shared_data: Path, tmp_path: Path) -> None:
    src, out, tasks = tmp_path / "in", tmp_path / "killed", 8
    total = shard_input(shared_data, src, shards=tasks, per_language=None)
    script = tmp_path / "run.py"
    script.write_text(RUNNER, encoding="utf-8")
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(make_config(src, out, tasks=tasks, workers=2)), encoding="utf-8")
    completions = out / "_work" / "logs" / "filter" / "completions"

    proc = subprocess.Popen([sys.executable, str(script), str(cfg_file)], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if completions.is_dir() and len(list(completions.iterdir())) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its worker processes, as when a node dies
    proc.wait()
    done = sorted(p.name for p in completions.iterdir())
    assert 2 <= len(done) < tasks, done
    assert not (out / "report").exists()
    filtered = out / "_work" / "filtered"
    before = {name: (filtered / f"{name}.jsonl").stat().st_mtime_ns for name in done
              if (filtered / f"{name}.jsonl").exists()}

    rerun = subprocess.run([sys.executable, str(script), str(cfg_file)], capture_output=True, text=True,
                           timeout=480)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "already been completed" in rerun.stderr or "Skipping" in rerun.stderr
    after = {name: (filtered / f"{name}.jsonl").stat().st_mtime_ns for name in before}
    assert before and after == before  # shards completed before the kill were not redone

    reference = run_pipeline(parse_config(make_config(src, tmp_path / "reference", tasks=tasks, workers=1), "ref"))
    resumed = json.loads((out / "report" / "corpus_report.json").read_text(encoding="utf-8"))
    assert read_outputs(out) == read_outputs(tmp_path / "reference")
    assert step_counts(resumed) == step_counts(reference)
    assert resumed["steps"][0]["in"] == total and resumed["complete"]
