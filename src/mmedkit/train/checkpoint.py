"""Checkpoints that resume exactly: model, optimizer, scheduler, data position and every RNG.

Plain (one process or data-parallel) checkpoints are written by the main process alone: ``model.safetensors``
(the whole model), ``optimizer.bin``, ``rng-<rank>.json`` for every rank (Python, NumPy, torch CPU and CUDA
generators, gathered to the main process), ``optimizer-0.json`` (a fingerprint of the optimizer state, checked
after loading) and ``trainer_state.json`` (step = data position, token counters, scheduler state, the run's
config). The data of a step depends on the step and the global batch only, so such a checkpoint resumes at any
number of processes: the ranks it has no RNG file for take rank 0's generators, as every rank of a fresh run
starts from the same seed.

With FSDP and DeepSpeed every rank writes its own shard (``accelerator.save_state``, their sharded formats) and
a checkpoint resumes at the same number of processes. Sharded optimizer state loads into a template taken
from the optimizer itself: a never-stepped optimizer has no moments in it, so they would silently restart
from zero. The optimizer therefore gets its state (a step at learning rate 0) before loading, and the loaded
state must match the saved fingerprint.

A checkpoint is written to ``step-N.partial`` and renamed when complete, ``trainer_state.json`` last, so a run
killed while saving leaves the previous checkpoint as the latest one.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmedkit.utils import atomic_write_json

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.bin"
_STEP_RE = re.compile(r"^step-(\d+)$")


def rng_state() -> dict[str, Any]:
    """Every random generator the training touches, as JSON-ready data."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [name, keys.tolist(), pos, has_gauss, cached],
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def _torch_optimizer(optimizer: Any) -> torch.optim.Optimizer | None:
    """The ``torch.optim`` optimizer under accelerate's wrapper (None for DeepSpeed's own)."""
    inner = getattr(optimizer, "optimizer", optimizer)
    return inner if isinstance(inner, torch.optim.Optimizer) else None


def optimizer_fingerprint(optimizer: Any) -> list[list[float]] | None:
    """Per parameter (in group order): float64 sum and absolute sum of each state tensor, by name."""
    opt = _torch_optimizer(optimizer)
    if opt is None:
        return None
    out = []
    for group in opt.param_groups:
        for p in group["params"]:
            state = opt.state.get(p, {})
            out.append([v for key in sorted(state) for t in [torch.as_tensor(state[key]).double()]
                        for v in (t.sum().item(), t.abs().sum().item())])
    return out


@torch.no_grad()
def init_optimizer_state(optimizer: Any) -> None:
    """Give every trained parameter its optimizer state (zero moments) without changing any weight:
    one step on zero gradients at learning rate 0."""
    opt = _torch_optimizer(optimizer)
    if opt is None or opt.state:
        return
    lrs = [g["lr"] for g in opt.param_groups]
    for group in opt.param_groups:
        group["lr"] = 0.0
        for p in group["params"]:
            p.grad = torch.zeros_like(p)
    opt.step()
    for group, lr in zip(opt.param_groups, lrs, strict=True):
        group["lr"] = lr
    opt.zero_grad(set_to_none=True)


def checkpoints(out: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = out / CHECKPOINTS
    found = [(int(m.group(1)), p) for p in root.glob("step-*") if (m := _STEP_RE.match(p.name))
             and (p / STATE_FILE).is_file()] if root.is_dir() else []
    return [p for _, p in sorted(found)]


def sharded(accelerator: Any) -> bool:
    """True under FSDP and DeepSpeed (every rank saves and loads its own shard)."""
    return str(accelerator.distributed_type).split(".")[-1] in ("FSDP", "DEEPSPEED")


def save_checkpoint(accelerator: Any, out: Path, step: int, state: dict[str, Any], keep: int,
                    optimizer: Any = None, model: Any = None) -> Path:
    """Write checkpoint ``step`` (all processes call this), then keep only the newest ``keep``."""
    final = out / CHECKPOINTS / f"step-{step:08d}"
    tmp = final.with_name(final.name + ".partial")
    main, rank = accelerator.is_main_process, accelerator.process_index
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    rngs = gather_from_ranks(accelerator, rng_state())
    if sharded(accelerator):  # each rank its own shard files
        accelerator.save_state(str(tmp), safe_serialization=True)
        if (fingerprint := optimizer_fingerprint(optimizer)) is not None:
            atomic_write_json(tmp / f"optimizer-{rank}.json", fingerprint)
    elif main:
        from safetensors.torch import save_model

        save_model(accelerator.unwrap_model(model), str(tmp / MODEL_FILE))
        torch.save(optimizer.state_dict(), tmp / OPTIMIZER_FILE)
        if (fingerprint := optimizer_fingerprint(optimizer)) is not None:
            atomic_write_json(tmp / "optimizer-0.json", fingerprint)
    accelerator.wait_for_everyone()
    if main:
        for r, rng in enumerate(rngs):
            atomic_write_json(tmp / f"rng-{r}.json", rng)
        atomic_write_json(tmp / STATE_FILE, {**state, "format": "sharded" if sharded(accelerator) else "full"})
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in checkpoints(out)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def gather_from_ranks(accelerator: Any, obj: Any) -> list[Any]:
    """``obj`` of every rank, in rank order."""
    if accelerator.num_processes == 1:
        return [obj]
    from accelerate.utils import gather_object

    return list(gather_object([obj]))


def load_checkpoint(accelerator: Any, path: Path, optimizer: Any = None, model: Any = None) -> dict[str, Any]:
    """Restore model, optimizer and RNG from ``path``; return its trainer state."""
    state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
    rank, world, saved_world = accelerator.process_index, accelerator.num_processes, state.get("world_size")
    if state.get("format") == "full" and not sharded(accelerator):
        from safetensors.torch import load_model

        load_model(accelerator.unwrap_model(model), str(path / MODEL_FILE))  # read on CPU, copied into place
        moments = torch.load(path / OPTIMIZER_FILE, map_location="cpu", weights_only=True)  # moved by load_state_dict
        optimizer.load_state_dict(moments)
        _check_optimizer(path / "optimizer-0.json", optimizer)
    elif state.get("format") == "full":
        raise RuntimeError(f"{path} was written without FSDP/DeepSpeed sharding; resume it with the launch "
                           f"config that wrote it")
    else:  # sharded (or written by an earlier mmedkit through accelerate): the same processes only
        if saved_world != world:
            raise RuntimeError(f"{path} holds a sharded checkpoint written by {saved_world} processes and this run "
                               f"has {world}; resume it with {saved_world} processes")
        init_optimizer_state(optimizer)
        accelerator.load_state(str(path))
        _check_optimizer(path / f"optimizer-{rank}.json", optimizer)
    rng = path / f"rng-{rank}.json"
    set_rng_state(json.loads((rng if rng.is_file() else path / "rng-0.json").read_text(encoding="utf-8")))
    return state


def _check_optimizer(saved: Path, optimizer: Any) -> None:
    """The loaded optimizer state must be the one saved (moments included)."""
    now = optimizer_fingerprint(optimizer)
    if now is None or not saved.is_file():
        return
    if not _same_sums(now, json.loads(saved.read_text(encoding="utf-8"))):
        empty = not any(now)
        raise RuntimeError(f"{saved.parent}: the optimizer state was not restored "
                           f"({'it is empty' if empty else 'it differs from the saved one'})")


def _same_sums(a: list[list[float]], b: list[list[float]]) -> bool:
    """Fingerprints equal up to the summation order (float64 sums of the same values differ in the last bits
    when another number of threads adds them); NaN equals NaN."""
    def close(x: float, y: float) -> bool:
        return (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)

    return len(a) == len(b) and all(len(p) == len(q) and all(map(close, p, q)) for p, q in zip(a, b, strict=True))
