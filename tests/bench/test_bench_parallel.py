"""Data-parallel ``mmed bench run``: items shared out by rank, one resume cache per rank, rank 0 merges; the
results are those of one process to the last byte."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmedkit.bench.engine import RunConfig, run_benchmark
from mmedkit.bench.parallel import Ranks, deal
from mmedkit.errors import MmedError

ENV = {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _bench(model: Path, out: Path, limit: int, *extra: str, processes: int = 1) -> subprocess.CompletedProcess[str]:
    launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
              if processes > 1 else [sys.executable])
    args = [*launch, "-m", "mmedkit", "bench", "run", "--model", str(model), "--out", str(out), "--limit",
            str(limit), "--no-progress", *extra]
    proc = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **ENV}, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_each_rank_takes_whole_chunks_in_turn() -> None:
    todo = list(range(70))
    shares = [deal(todo, 8, r, 3) for r in range(3)]
    assert shares[0] == [*range(0, 8), *range(24, 32), *range(48, 56)]
    assert shares[2] == [*range(16, 24), *range(40, 48), *range(64, 70)]
    assert sorted(x for s in shares for x in s) == todo


def test_backend_options_per_rank() -> None:
    split = [Ranks(r, r, 3).model_options("openai", {"concurrency": 8})["concurrency"] for r in range(3)]
    assert split == [3, 3, 2]
    assert Ranks(1, 1, 2).model_options("hf", {"device": "cuda:3"})["device"] == "cuda:3"  # an explicit choice stays
    with pytest.raises(MmedError, match="does not run data-parallel"):
        Ranks(0, 0, 2).model_options("vllm", {})
    with pytest.raises(MmedError, match="less than the 4 processes"):
        Ranks(0, 0, 4).model_options("openai", {"concurrency": 2})


def test_a_killed_parallel_run_is_resumed_by_one_process(tmp_path: Path, tiny_model_dir: Path) -> None:
    """The rank caches of an interrupted 2-process run count as done; one process finishes and folds them in."""
    cfg = RunConfig(model=str(tiny_model_dir), limit=2, model_options={"device": "cpu"})
    whole = run_benchmark(cfg, tmp_path / "whole", show_progress=False)
    samples = [json.loads(x) for x in (tmp_path / "whole" / "samples.jsonl").read_text().splitlines()]
    cache = tmp_path / "cut" / ".cache"
    cache.mkdir(parents=True)
    fp = cfg.fingerprint()
    for rank in (0, 1):  # what each rank had appended when the run was stopped
        part = samples[rank * 4:rank * 4 + 3]
        (cache / f"{fp}.rank-{rank}.jsonl").write_text("".join(json.dumps(s) + "\n" for s in part))
    resumed = run_benchmark(cfg, tmp_path / "cut", show_progress=False)
    assert resumed["timing"]["items_from_cache"] == 6
    assert resumed["metrics"] == whole["metrics"]
    assert (tmp_path / "cut" / "samples.jsonl").read_bytes() == (tmp_path / "whole" / "samples.jsonl").read_bytes()
    assert sorted(p.name for p in cache.iterdir()) == [f"{fp}.jsonl"]
    assert len((cache / f"{fp}.jsonl").read_text().splitlines()) == len(samples)


@pytest.mark.slow
def test_two_processes_give_the_one_process_results(tmp_path: Path, tiny_model_dir: Path) -> None:
    _bench(tiny_model_dir, tmp_path / "one", 6)
    proc = _bench(tiny_model_dir, tmp_path / "two", 6, processes=2)
    assert "2 processes: rank 0 " in proc.stdout and "per rank: rank 0 32 items" in proc.stdout
    assert (tmp_path / "two" / "samples.jsonl").read_bytes() == (tmp_path / "one" / "samples.jsonl").read_bytes()
    one, two = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("one", "two"))
    assert two["metrics"] == one["metrics"]
    timing = two["timing"]
    assert timing["items_this_run"] == 36 and [r["items"] for r in timing["per_rank"]] == [32, 4]
    caches = sorted(p.name for p in (tmp_path / "two" / ".cache").iterdir())
    assert caches == [f"{two['fingerprint']}.jsonl"]  # the rank caches were folded into the run's cache

    # Resumed at 2 processes over a longer list: only the new items are scored, the result is one process's.
    _bench(tiny_model_dir, tmp_path / "one", 10)
    again = _bench(tiny_model_dir, tmp_path / "two", 10, processes=2)
    assert "rank 0 24 items" in again.stdout and "rank 1 0 items" in again.stdout
    assert (tmp_path / "two" / "samples.jsonl").read_bytes() == (tmp_path / "one" / "samples.jsonl").read_bytes()


@pytest.mark.slow
def test_openai_backend_on_two_processes_splits_the_concurrency(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Two processes against a real OpenAI-compatible server (the tiny model): 2 requests in flight each, the
    results of one process with 4."""
    from server_process import ServerProcess

    server = ServerProcess(["--model", str(tiny_model_dir), "--device", "cpu", "--dtype", "float32"],
                           tmp_path / "server.log", module="mmedkit.serve.openai_api")
    try:
        server.wait_ready()
        api = ["--backend", "openai", "--base-url", server.url, "--tokenizer", str(tiny_model_dir), "--concurrency",
               "4"]
        _bench(Path("tiny"), tmp_path / "one", 3, *api)
        proc = _bench(Path("tiny"), tmp_path / "two", 3, *api, processes=2)
    finally:
        server.stop()
    assert "rank 0 " in proc.stdout and "2 requests in flight" in proc.stdout
    one, two = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("one", "two"))
    assert two["metrics"] == one["metrics"]
    assert (tmp_path / "two" / "samples.jsonl").read_bytes() == (tmp_path / "one" / "samples.jsonl").read_bytes()


def test_processes_that_cannot_form_a_group_fail_clearly(tmp_path: Path, tiny_model_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_ADDR", "MASTER_PORT")}
    env.update(ENV, WORLD_SIZE="2", RANK="0", LOCAL_RANK="0")
    proc = subprocess.run([sys.executable, "-m", "mmedkit", "bench", "run", "--model", str(tiny_model_dir), "--out",
                           str(tmp_path / "out"), "--limit", "1", "--no-progress"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "WORLD_SIZE=2 but the process group could not form" in proc.stderr and "Traceback" not in proc.stderr
