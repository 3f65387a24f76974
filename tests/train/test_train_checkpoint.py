"""Resume restores the optimizer's moments (non-empty, equal to the saved ones), never zeros."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mmedkit.train.checkpoint import checkpoints, init_optimizer_state
from mmedkit.train.config import TrainConfig, load_config
from mmedkit.train.loop import Trainer

SETS = ["logging.progress=false", "logging.tensorboard=false", "data.langs=en", "train.max_steps=4",
        "train.save_every=100", "train.weight_decay=0.1"]


def _cfg(out: Path, model: Path) -> TrainConfig:
    cfg = load_config("tiny-cpu", "sft", SETS)
    cfg.model, cfg.out = str(model), str(out)
    return cfg


def _state(trainer: Trainer) -> dict[int, dict[str, torch.Tensor]]:
    return {i: {k: torch.as_tensor(v).clone() for k, v in s.items()}
            for i, s in trainer.optimizer.state_dict()["state"].items()}


def test_resumed_optimizer_state_equals_the_saved_one(tmp_path: Path, tiny_model_dir: Path) -> None:
    first = Trainer(_cfg(tmp_path / "run", tiny_model_dir))
    assert first.run(stop_after=2)["step"] == 2
    saved = _state(first)
    assert saved and all(float(s["exp_avg_sq"].abs().sum()) > 0 for s in saved.values())
    first.close()  # release the output folder

    resumed = Trainer(_cfg(tmp_path / "run", tiny_model_dir))
    resumed.resume()
    restored = _state(resumed)
    assert restored.keys() == saved.keys()
    for i, state in saved.items():
        for key, value in state.items():
            assert torch.equal(restored[i][key], value), (i, key)


def test_a_differing_optimizer_state_is_refused(tmp_path: Path, tiny_model_dir: Path) -> None:
    first = Trainer(_cfg(tmp_path / "run", tiny_model_dir))
    first.run(stop_after=1)
    first.close()
    fingerprint = checkpoints(tmp_path / "run")[-1] / "optimizer-0.json"
    fingerprint.write_text(json.dumps([[0.0] * len(p) for p in json.loads(fingerprint.read_text())]))
    with pytest.raises(RuntimeError, match="the optimizer state was not restored"):
        Trainer(_cfg(tmp_path / "run", tiny_model_dir)).resume()


def test_optimizer_state_is_created_without_moving_weights() -> None:
    model = torch.nn.Linear(4, 3)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.5)
    init_optimizer_state(opt)
    assert len(opt.state) == 2 and all(float(s["exp_avg"].abs().sum()) == 0 for s in opt.state.values())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert [g["lr"] for g in opt.param_groups] == [0.1] and all(p.grad is None for p in model.parameters())
