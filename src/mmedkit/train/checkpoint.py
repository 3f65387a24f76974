"""Checkpoints that resume exactly: model, optimizer, scheduler, data position and every RNG.

``accelerate`` writes the model (safetensors), the optimizer and its own RNG file (with FSDP and
DeepSpeed, in their sharded formats). mmedkit adds, per process, ``rng-<rank>.json`` (Python, NumPy,
torch CPU and CUDA generators, as plain JSON) and ``trainer_state.json`` (step = data position,
token counters, scheduler state, the run's config) and ``optimizer-<rank>.json`` (a fingerprint of the
process's optimizer state, checked after loading). A checkpoint is written to ``step-N.partial``
and renamed when complete, ``trainer_state.json`` last, so a run killed while saving leaves the
previous checkpoint as the latest one.

Sharded FSDP checkpoints load the optimizer into a template taken from the optimizer itself: a
never-stepped optimizer has no moments in it, so they would silently restart from zero. The
optimizer therefore gets its state (a step at learning rate 0) before loading, and the loaded state
must match the saved fingerprint.
"""

from __future__ import annotations

import json
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


def save_checkpoint(accelerator: Any, out: Path, step: int, state: dict[str, Any], keep: int,
                    optimizer: Any = None) -> Path:
    """Write checkpoint ``step`` (all processes call this), then keep only the newest ``keep``."""
    final = out / CHECKPOINTS / f"step-{step:08d}"
    tmp = final.with_name(final.name + ".partial")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp), safe_serialization=True)
    atomic_write_json(tmp / f"rng-{accelerator.process_index}.json", rng_state())
    if (fingerprint := optimizer_fingerprint(optimizer)) is not None:
        atomic_write_json(tmp / f"optimizer-{accelerator.process_index}.json", fingerprint)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        atomic_write_json(tmp / STATE_FILE, state)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in checkpoints(out)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator: Any, path: Path, optimizer: Any = None) -> dict[str, Any]:
    """Restore model, optimizer and RNG from ``path``; return its trainer state."""
    state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
    if state.get("world_size") != accelerator.num_processes:
        raise RuntimeError(f"{path} was written by {state.get('world_size')} processes and this run has "
                           f"{accelerator.num_processes}; resume with the same number of processes")
    init_optimizer_state(optimizer)
    accelerator.load_state(str(path))
    _check_optimizer(path / f"optimizer-{accelerator.process_index}.json", optimizer)
    rng = path / f"rng-{accelerator.process_index}.json"
    set_rng_state(json.loads(rng.read_text(encoding="utf-8")))
    return state


def _check_optimizer(saved: Path, optimizer: Any) -> None:
    """The loaded optimizer state must be the one saved (moments included)."""
    now = optimizer_fingerprint(optimizer)
    if now is None or not saved.is_file():
        return
    if json.dumps(now) != json.dumps(json.loads(saved.read_text(encoding="utf-8"))):  # NaN-safe comparison
        empty = not any(now)
        raise RuntimeError(f"{saved.parent}: the optimizer state was not restored "
                           f"({'it is empty' if empty else 'it differs from the saved one'})")
