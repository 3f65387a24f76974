"""Training on several processes (torchrun, gloo on CPU): the same run as one process, one writer, resume across
world sizes, a clear error when the process group cannot form."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from filelock import FileLock
from safetensors.torch import load_file

from mmedkit.errors import MmedError
from mmedkit.train.config import load_config
from mmedkit.train.loop import LOCK_FILE, train

LAUNCH = Path(__file__).with_name("audited_launch.py")
# Same global batch (4) at every world size: 2 accumulated micro-batches of 2 on one process, 1 on each of two.
PRETRAIN = ["logging.progress=false", "logging.tensorboard=false", "data.seq_len=64", "data.eval_fraction=0.1",
            "train.max_steps=4", "train.global_batch_size=4", "train.micro_batch_size=2", "train.log_every=1",
            "train.save_every=2", "train.keep_checkpoints=4"]
# LoRA dropout off: its masks depend on how the batch is cut into micro-batches, which the world size changes.
LORA = ["logging.progress=false", "logging.tensorboard=false", "method=lora", "lora.dropout=0.0", "data.max_len=512",
        "data.langs=fr,ja", "train.max_steps=3", "train.global_batch_size=4", "train.micro_batch_size=2",
        "train.log_every=1", "train.save_every=100"]




def _sets(stage: str, corpus: Path, cache: Path) -> list[str]:
    return [*PRETRAIN, f"data.sources=[{{path: '{corpus}'}}]", f"data.cache_dir='{cache}'"] if stage == "pretrain" \
        else list(LORA)


def _one(stage: str, model: Path, out: Path, sets: list[str], stop_after: int | None = None) -> dict:
    cfg = load_config("tiny-cpu", stage, sets)
    cfg.model, cfg.out = str(model), str(out)
    return train(cfg, stop_after=stop_after)


def _two(stage: str, model: Path, out: Path, sets: list[str], *extra: str) -> subprocess.CompletedProcess[str]:
    """``torchrun --nproc_per_node 2``; ranks other than 0 fail on any write under ``out``."""
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(LAUNCH),
            stage, "tiny-cpu", "--model", str(model), "--out", str(out), *extra]
    for s in sets:
        args += ["--set", s]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _losses(out: Path, kind: str = "train") -> dict[int, float]:
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in log if r["kind"] == kind}


def _same_weights(a: Path, b: Path, name: str) -> None:
    wa, wb = load_file(str(a / name)), load_file(str(b / name))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.allclose(wa[k], wb[k], rtol=1e-4, atol=1e-6), k


def _same_run(a: Path, b: Path, name: str = "model.safetensors") -> None:
    la, lb = _losses(a), _losses(b)
    assert la.keys() == lb.keys() and la
    for step in la:
        assert la[step] == pytest.approx(lb[step], rel=1e-5), step
    ea, eb = _losses(a, "eval"), _losses(b, "eval")
    assert ea.keys() == eb.keys()
    for step in ea:
        assert ea[step] == pytest.approx(eb[step], rel=1e-5), step
    _same_weights(a, b, name)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, corpus: Path) -> Path:
    """The reference: the pretraining run on one process, uninterrupted."""
    root = tmp_path_factory.mktemp("one")
    _one("pretrain", tiny_model_dir, root / "out", _sets("pretrain", corpus, root / "cache"))
    return root / "out"


@pytest.mark.slow
def test_two_processes_train_as_one(tmp_path: Path, tiny_model_dir: Path, corpus: Path, one_process: Path) -> None:
    proc = _two("pretrain", tiny_model_dir, tmp_path / "two", _sets("pretrain", corpus, tmp_path / "cache"))
    assert "2 processes (backend gloo): rank 0 " in proc.stdout + proc.stderr
    assert "tokens/s per rank: rank 0 " in proc.stdout + proc.stderr
    summary = json.loads((tmp_path / "two" / "train_summary.json").read_text())
    assert summary["processes"] == 2 and len(summary["tokens_per_s_per_rank_this_session"]) == 2
    assert summary["held_out_after"]["loss"] == pytest.approx(
        json.loads((one_process / "train_summary.json").read_text())["held_out_after"]["loss"], rel=1e-5)
    _same_run(one_process, tmp_path / "two")
    ckpt = tmp_path / "two" / "checkpoints" / "step-00000002"
    assert sorted(p.name for p in ckpt.iterdir()) == ["model.safetensors", "optimizer-0.json", "optimizer.bin",
                                                      "rng-0.json", "rng-1.json", "trainer_state.json"]


@pytest.mark.slow
def test_checkpoint_resumes_across_world_sizes(tmp_path: Path, tiny_model_dir: Path, corpus: Path,
                                               one_process: Path) -> None:
    """2 -> 1 and 1 -> 2 processes, each stopped after step 2 of 4: both end as the uninterrupted run."""
    sets = _sets("pretrain", corpus, tmp_path / "cache")
    _two("pretrain", tiny_model_dir, tmp_path / "down", sets, "--stop-after", "2")
    assert sorted(_losses(tmp_path / "down")) == [1, 2]
    resumed = _one("pretrain", tiny_model_dir, tmp_path / "down", sets)
    assert resumed["steps_this_session"] == 2 and resumed["processes"] == 1
    _same_run(one_process, tmp_path / "down")

    first = _one("pretrain", tiny_model_dir, tmp_path / "up", sets, stop_after=2)
    assert first["step"] == 2
    proc = _two("pretrain", tiny_model_dir, tmp_path / "up", sets)
    assert "resumed from" in proc.stdout + proc.stderr and "written by 1 process(es)" in proc.stdout + proc.stderr
    assert json.loads((tmp_path / "up" / "train_summary.json").read_text())["steps_this_session"] == 2
    _same_run(one_process, tmp_path / "up")


@pytest.mark.slow
def test_lora_sft_on_two_processes_matches_one(tmp_path: Path, tiny_model_dir: Path) -> None:
    _one("sft", tiny_model_dir, tmp_path / "one", LORA)
    _two("sft", tiny_model_dir, tmp_path / "two", LORA)
    _same_run(tmp_path / "one", tmp_path / "two", "adapter_model.safetensors")


def test_a_locked_output_folder_is_refused(tmp_path: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with FileLock(out / LOCK_FILE), pytest.raises(MmedError, match="in use by another training run"):
        _one("sft", tiny_model_dir, out, LORA)
    assert not (out / "checkpoints").exists()


def test_processes_that_cannot_form_a_group_fail_clearly(tmp_path: Path, tiny_model_dir: Path) -> None:
    """WORLD_SIZE=2 without a rendezvous address: an error naming the cause, not two lone trainings."""
    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_ADDR", "MASTER_PORT")}
    env.update(WORLD_SIZE="2", RANK="0", LOCAL_RANK="0", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    args = [sys.executable, "-m", "mmedkit.train.cli", "sft", "tiny-cpu", "--model", str(tiny_model_dir), "--out",
            str(tmp_path / "out")]
    for s in LORA:
        args += ["--set", s]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "WORLD_SIZE=2 but the process group could not form" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_fsdp_asked_for_in_a_cpu_group_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """accelerate turns FSDP on only for GPU groups: on CPUs it would train unsharded without a word."""
    from mmedkit.train.gpu import check_sharding

    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    with pytest.raises(MmedError, match="asks for FSDP but the processes formed a MULTI_CPU group"):
        check_sharding("DistributedType.MULTI_CPU")
    check_sharding("DistributedType.FSDP")


def test_accelerate_cpu_launch_of_one_process_for_several_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """``accelerate launch --cpu --num_processes 2`` (no mpirun) starts one process with a rendezvous address."""
    from mmedkit.train.gpu import init_processes

    for name in ("WORLD_SIZE", "LOCAL_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    with pytest.raises(MmedError, match="started one"):
        init_processes()
